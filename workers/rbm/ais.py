"""ln Z of an RBM by annealed importance sampling, in fused float32 kernels.

Conventions as in :mod:`workers.rbm.model`. The chains anneal from the base-rate model
(W = 0, b = 0, visible biases a0 fitted to the data; Salakhutdinov & Murray 2008) to the RBM
through the intermediate models k = 0..K

    log p*_k(v) = ((1 - beta_k) a0 + beta_k a).v + sum_j softplus(beta_k (b_j + (v W)_j)),

(beta_k W, (1 - beta_k) a0 + beta_k a, beta_k b) with the hidden layer summed out, so
Z_0 = 2^n_h prod_i 2 cosh(a0_i). Each chain starts with an exact draw of the base model and
collects the log importance weight sum_k [log p*_k(v_{k-1}) - log p*_{k-1}(v_{k-1})]
(Neal 2001); between the two it makes one block-Gibbs step that leaves p*_k invariant, followed
by the global spin-flip Metropolis-Hastings move v -> -v (what lets chains cross between the two
ordered states below Tc). The estimate is ln Z_0 + log mean of the weights.

Speed: one step is two float32 matrix products (v W and h W^T, the sgemm floor) and fused numba
passes (:mod:`workers.rbm.kernels`' exp and random stream) for the weight increments, the
Bernoulli draws and the flip move. The increments use
softplus(t) - softplus(t') = (beta - beta') relu(z) + log((1 + e^{-beta|z|}) / (1 + e^{-beta'|z|}))
for t = beta z, t' = beta' z, which has no cancellation; every sum over units is in float64.
The inverse temperatures are float32 numbers (so every pass sees the same intermediate model).

Runs, schedule and error bar. One run of n chains gives ln Z_0 + log mean(w) and the
delta-method standard error sqrt(var(w) / n) / mean(w); it is trustworthy only when the weights
are even (effective sample size (sum w)^2 / sum w^2 a good fraction of n) and the annealing was
slow enough that more steps no longer raise the estimate. So :func:`ais` runs fresh chains with
500, 1000, 2000, ... steps until a run has an ESS of at least n / 2 and agrees with the run before
within 2 combined standard errors. Then one more run of fresh chains on that run's schedule gives
the estimate (the runs that decided would be biased low by the decision: an even set of weights
that agrees with a shorter, low run is more often low itself); its error is its standard error
with the deciding run's change from the run before, beyond their combined standard error, added
in quadrature. Each run's schedule comes from the run before (the first is
uniform): the standard deviation s_k of the increments over each interval, and the new
inverse temperatures cut 0.8 sum s / total + 0.2 beta (thermodynamic length, a fifth of the
steps spread uniformly) into equal parts, so the steps are densest where the weights vary.
Every run has its own chains, so each estimate is unbiased for Z given its schedule. Without
convergence within the step limit the last (longest) run's estimate is returned with a NaN
error: an AIS estimate is a stochastic lower bound of ln Z (P(estimate > ln Z + t) <= e^-t),
and no error bar computed from its weights would be honest. docs/conventions.md gives what the
validation against exact ln Z and long runs measured.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.special import logsumexp

from contract.constants import AIS_CHAINS, AIS_START_STEPS, ais_max_steps
from workers.rbm import kernels as K
from workers.rbm.kernels import exp32, fill_words

__all__ = ["AISResult", "anneal", "thermodynamic_schedule", "ais", "weight_hidden", "flip_move"]

#: A run converged when its ESS is at least ESS_FRACTION of the chains and its estimate is within
#: AGREE_Z combined standard errors of the previous run's (the defaults of the chains and steps
#: are in contract.constants: orchestrator.costs prices the longest sequence of runs).
ESS_FRACTION, AGREE_Z = 0.5, 2.0
UNIFORM_SHARE = 0.2

_ONE, _ZERO = np.float32(1.0), np.float32(0.0)
_U8 = np.uint32(8)
_TWO_M24 = np.float32(2.0 ** -24)
_BLOCK = 128  # units per float64 product of ratios (each ratio in [1/2, 2]: no overflow)


@njit(cache=True, error_model="numpy")
def weight_hidden(x, b, beta, beta_prev, h, sample, lanes, words, q, lin, log_w):
    """For each chain r, z = x[r] + b: log_w[r] += sum_j softplus(beta z_j) - softplus(beta_prev z_j)
    (float64 sums, module docstring); with ``sample``, h[r, j] <- beta with probability
    sigmoid(beta z_j), else 0 (h is beta-scaled so that h W^T is the field of model beta).
    ``q``, ``lin``: float32 scratch rows of n_hidden."""
    m, n = x.shape
    n_words = K.words_per_row(n)
    halves = words.view(np.uint32)
    d_beta = np.float64(beta) - np.float64(beta_prev)
    for r in range(m):
        if sample:
            fill_words(lanes, words, n_words)
        for j in range(n):  # branch-free: vectorises
            z = x[r, j] + b[j]
            az = abs(z)
            e = exp32(-beta * az)
            q[j] = (_ONE + e) / (_ONE + exp32(-beta_prev * az))
            lin[j] = max(z, _ZERO)
            if sample:
                u = np.float32(np.int32(halves[j] >> _U8)) * _TWO_M24
                num = _ONE if z >= _ZERO else e  # sigmoid(beta z) = num / (1 + e)
                h[r, j] = beta if u * (_ONE + e) < num else _ZERO
        log_w[r] += d_beta * _sum_relu(lin, n) + _sum_log(q, n)


@njit(inline="always")
def _sum_relu(lin, n):
    s = 0.0
    for j in range(n):
        s += np.float64(lin[j])
    return s


@njit(inline="always")
def _sum_log(q, n):
    acc, prod = 0.0, 1.0
    for j in range(n):
        prod *= np.float64(q[j])
        if j % _BLOCK == _BLOCK - 1:
            acc += math.log(prod)
            prod = 1.0
    return acc + math.log(prod)


@njit(cache=True, error_model="numpy")
def flip_move(x, v, s, b, beta, u, q, lin):
    """The global spin-flip move v -> -v at model beta on each chain r, after x = v W.

    s[r] = (v.a0, v.(a - a0)) of the row, so a_beta.v = s0 + beta s1; the move is accepted with
    probability min(1, exp(log p*(-v) - log p*(v))), where log p*(-v) - log p*(v) =
    -2 a_beta.v + sum_j softplus(beta (b_j - x_j)) - softplus(beta (b_j + x_j)). An accepted row
    has v, x and s negated in place. Returns the number of flips.
    """
    m, n = x.shape
    flips = 0
    for r in range(m):
        for j in range(n):
            zp = b[j] + x[r, j]
            zm = b[j] - x[r, j]
            q[j] = (_ONE + exp32(-beta * abs(zm))) / (_ONE + exp32(-beta * abs(zp)))
            lin[j] = max(zm, _ZERO) - max(zp, _ZERO)
        a_dot = np.float64(s[r, 0]) + np.float64(beta) * np.float64(s[r, 1])
        log_ratio = -2.0 * a_dot + np.float64(beta) * _sum_relu(lin, n) + _sum_log(q, n)
        if log_ratio >= 0.0 or u[r] < math.exp(log_ratio):
            flips += 1
            for i in range(v.shape[1]):
                v[r, i] = -v[r, i]
            for j in range(n):
                x[r, j] = -x[r, j]
            s[r, 0] = -s[r, 0]
            s[r, 1] = -s[r, 1]
    return flips


def _as32(W, a, b, a0):
    f32 = lambda z: np.ascontiguousarray(z, dtype=np.float32)  # noqa: E731
    return f32(W), f32(a), f32(b), f32(a0)


def anneal(W, a, b, a0, betas, n_chains, rng, flip_moves=True, record=False):
    """Run ``n_chains`` AIS chains along ``betas`` (0 = first < ... < last = 1, float32 values).

    Returns (log_w, step_sd, flip_rate): the log importance weights (n_chains,) float64, with
    ``record`` the standard deviation over chains of each step's increment (len(betas) - 1,)
    (else None), and the accepted fraction of flip moves (None without them).
    """
    W32, a32, b32, a0_32 = _as32(W, a, b, a0)
    n_v, n_h = W32.shape
    betas32 = np.asarray(betas, dtype=np.float32)
    lanes = K.make_lanes(rng)
    words = np.empty(max(K.words_per_row(n_v), K.words_per_row(n_h)), np.uint64)
    q, lin = np.empty(n_h, np.float32), np.empty(n_h, np.float32)
    colsum = np.empty(n_v, np.float32)
    v = np.empty((n_chains, n_v), np.float32)
    K.visible_kernel(np.zeros((n_chains, n_v), np.float32), a0_32, v, lanes, words, colsum)
    A = np.ascontiguousarray(np.stack([a0_32, a32 - a0_32], axis=1))  # (n_v, 2): v.a0, v.(a - a0)
    x, s = v @ W32, v @ A
    h = np.empty((n_chains, n_h), np.float32)
    pv = np.empty((n_chains, n_v), np.float32)
    log_w = np.zeros(n_chains)
    step_sd = np.empty(len(betas32) - 1) if record else None
    before = np.empty(n_chains) if record else None
    flips = 0
    for k in range(1, len(betas32)):
        beta, beta_prev = betas32[k], betas32[k - 1]
        last = k == len(betas32) - 1
        if record:
            before[:] = log_w
        log_w += (np.float64(beta) - np.float64(beta_prev)) * s[:, 1].astype(np.float64)
        weight_hidden(x, b32, beta, beta_prev, h, not last, lanes, words, q, lin, log_w)
        if record:
            step_sd[k - 1] = np.std(log_w - before)
        if last:
            break
        np.matmul(h, W32.T, out=pv)  # h is beta-scaled: the field of model beta
        a_beta = ((_ONE - beta) * a0_32 + beta * a32).astype(np.float32)
        K.visible_kernel(pv, a_beta, v, lanes, words, colsum)
        np.matmul(v, W32, out=x)
        np.matmul(v, A, out=s)
        if flip_moves:
            flips += flip_move(x, v, s, b32, beta, rng.random(n_chains), q, lin)
    steps = len(betas32) - 2
    rate = flips / (steps * n_chains) if flip_moves and steps > 0 else None
    return log_w, step_sd, rate


def thermodynamic_schedule(pilot_betas, step_sd, n_steps, uniform_share=UNIFORM_SHARE):
    """``n_steps + 1`` float32 inverse temperatures from 0 to 1, equally spaced in the cumulative
    (1 - uniform_share) sum s_k / sum s + uniform_share beta over the pilot's grid
    (s_k: the pilot's increment spread over its interval k). Strictly increasing."""
    pilot_betas = np.asarray(pilot_betas, dtype=np.float64)
    sd = np.maximum(np.asarray(step_sd, dtype=np.float64), 0.0)
    length = np.concatenate([[0.0], np.cumsum(sd)])
    length = length / length[-1] if length[-1] > 0 else pilot_betas.copy()
    mixed = (1.0 - uniform_share) * length + uniform_share * pilot_betas
    betas = np.interp(np.linspace(0.0, 1.0, n_steps + 1), mixed, pilot_betas)
    betas = np.unique(betas.astype(np.float32))
    betas[0], betas[-1] = 0.0, 1.0
    return betas


@dataclass(frozen=True)
class AISResult:
    """ln Z with its error (NaN when the runs did not converge: module docstring), the effective
    sample size of the last run's weights, each run's steps, estimate and standard error (the
    last is the reported run), and the accepted fraction of flip moves in the last run."""

    lnZ: float
    err: float
    ess: float
    n_chains: int
    steps: tuple[int, ...]
    estimates: tuple[float, ...]
    errors: tuple[float, ...]
    converged: bool
    flip_rate: float | None


def _estimate(log_w, log_z0):
    """(ln Z, delta-method standard error, effective sample size) from log weights."""
    n = len(log_w)
    w = np.exp(log_w - log_w.max())
    err = float(np.std(w, ddof=1) / (math.sqrt(n) * w.mean()))
    return log_z0 + float(logsumexp(log_w) - math.log(n)), err, float(w.sum() ** 2 / (w ** 2).sum())


def ais(W, a, b, a0, rng, n_chains=AIS_CHAINS, start_steps=AIS_START_STEPS, max_steps=None,
        flip_moves=True):
    """ln Z of the RBM (W, a, b) by AIS from the base-rate model a0 (module docstring): runs of
    ``n_chains`` fresh chains with start_steps, 2 start_steps, ... <= max_steps steps, each on the
    schedule the previous run measured (the first uniform), until one converges. ``max_steps``
    None: :func:`contract.constants.ais_max_steps` of the RBM's size.
    """
    n_v, n_h = np.shape(W)
    max_steps = ais_max_steps(n_v, n_h, n_chains) if max_steps is None else max_steps
    if n_chains < 2 or start_steps < 1 or max_steps < start_steps:
        raise ValueError(f"need n_chains >= 2 and 1 <= start_steps <= max_steps; got "
                         f"{n_chains}, {start_steps}, {max_steps}")
    a0 = np.asarray(a0, dtype=np.float64)
    log_z0 = n_h * math.log(2.0) + float(np.logaddexp(a0, -a0).sum())
    betas = np.linspace(0.0, 1.0, start_steps + 1).astype(np.float32)
    steps, estimates, errors = [], [], []
    while True:
        log_w, sd, rate = anneal(W, a, b, a0, betas, n_chains, rng, flip_moves, record=True)
        ln_z, err, ess = _estimate(log_w, log_z0)
        steps.append(len(betas) - 1)
        estimates.append(ln_z)
        errors.append(err)
        converged = (ess >= ESS_FRACTION * n_chains and len(steps) > 1
                     and abs(ln_z - estimates[-2]) <= AGREE_Z * math.hypot(err, errors[-2]))
        if converged or 2 * steps[-1] > max_steps:
            break
        betas = thermodynamic_schedule(betas, sd, 2 * steps[-1])
    if converged:
        # The runs that decided are not reported: selecting a run by its own weights (even ones,
        # agreeing with a shorter run that is biased low) would bias it low. A fresh run on the
        # same schedule is reported, with the decided run's drift from the run before (beyond
        # their noise: what bias may be left) added to its standard error in quadrature.
        drift = max(0.0, abs(ln_z - estimates[-2]) - math.hypot(err, errors[-2]))
        log_w, _, rate = anneal(W, a, b, a0, betas, n_chains, rng, flip_moves)
        ln_z, err, ess = _estimate(log_w, log_z0)
        steps.append(len(betas) - 1)
        estimates.append(ln_z)
        errors.append(err)
        err = math.hypot(err, drift)
    return AISResult(lnZ=ln_z, err=err if converged else float("nan"), ess=ess, n_chains=n_chains,
                     steps=tuple(steps), estimates=tuple(estimates), errors=tuple(errors),
                     converged=converged, flip_rate=rate)
