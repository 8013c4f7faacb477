"""Ferrenberg-Swendsen histogram reweighting: single histogram and multiple histogram (WHAM).

A run at beta_0 samples E with probability g(E) exp(-beta_0 E) / Z_0, so its histogram H(E)
reweights to any beta near beta_0 (single histogram, Ferrenberg & Swendsen 1988):

    <O>_beta = sum_E S_O(E) exp(-(beta - beta_0) E) / sum_E H(E) exp(-(beta - beta_0) E),

with S_O(E) the sum of O over the measurements at energy E. R runs at beta_k combine into one
density of states (multiple histogram, Ferrenberg & Swendsen 1989):

    g(E) = H(E) / sum_k n_k exp(-beta_k E - lnZ_k),   lnZ_k = ln sum_E g(E) exp(-beta_k E),

where H = sum_k H_k / g_k and n_k = (sum_E H_k) / g_k count effectively independent
measurements (g_k = 2 tau_int,k, the statistical inefficiency). The lnZ_k are solved in log space:
a few hundred self-consistent FS iterations, then Newton steps on the equivalent convex objective
Phi(f) = sum_E H(E) ln sum_k n_k exp(-beta_k E - f_k) + sum_k n_k f_k, whose stationary point is
exactly the FS fixed point (Shirts & Chodera, J. Chem. Phys. 129, 124105 (2008)); lnZ_0 = 0.

Observables are those of docs/conventions.md: e = <E>/N, C = beta^2 Var(E)/N, <|m|>, <m^2>, <m^4>,
chi = beta N (<m^2> - <|m|>^2), U4 = 1 - <m^4> / (3 <m^2>^2). Error bars come from the bootstrap
over blocks of the stored series (``analysis.resampling``).

References
----------
A. M. Ferrenberg and R. H. Swendsen, Phys. Rev. Lett. 61, 2635 (1988); 63, 1195 (1989).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from .resampling import BlockedHistogram, bootstrap_weights

__all__ = ["OBSERVABLES", "histogram_observables", "reweight_single", "MultiHistogram",
           "multi_histogram", "solve_log_partition", "histogram_overlap", "find_peak",
           "bootstrap_replicas"]

OBSERVABLES = ("e", "C", "m_abs", "m2", "m4", "chi", "binder")


def histogram_observables(levels, H, S, lam, T, n_sites: int) -> dict[str, np.ndarray]:
    """Observables of a histogram whose level weights are multiplied by ``exp(lam)``.

    Parameters
    ----------
    levels : ndarray, shape (n_levels,), total energies E.
    H : ndarray, shape (n_levels,), counts (effective counts for multiple histograms).
    S : ndarray, shape (n_levels, 3), per-level sums of |m|, m^2, m^4.
    lam : ndarray, shape (n_T, n_levels), log reweighting factors at each target temperature.
    T : ndarray, shape (n_T,), target temperatures.
    n_sites : int, N = L^2.

    Returns
    -------
    dict of ndarray, shape (n_T,), keys :data:`OBSERVABLES`.
    """
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    beta = 1.0 / T
    present = H > 0
    lam = np.where(present, lam, -np.inf)
    with np.errstate(divide="ignore"):
        logp = lam + np.log(H)
    shift = logp.max(axis=1, keepdims=True)
    p = np.exp(logp - shift)
    z = p.sum(axis=1)
    p /= z[:, None]
    E = levels.astype(np.float64)
    mean = p @ E
    var = np.sum(p * (E[None, :] - mean[:, None]) ** 2, axis=1)  # about the mean: no cancellation
    mm = (np.exp(lam - shift) @ S) / z[:, None]
    m_abs, m2, m4 = mm[:, 0], mm[:, 1], mm[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        binder = 1.0 - m4 / (3.0 * m2**2)
    return {"e": mean / n_sites, "C": beta**2 * var / n_sites, "m_abs": m_abs, "m2": m2, "m4": m4,
            "chi": beta * n_sites * (m2 - m_abs**2), "binder": binder}


def reweight_single(hist: BlockedHistogram, T, weights=None) -> dict[str, np.ndarray]:
    """Single-histogram reweighting of one run to temperatures ``T``.

    ``<O>_beta = sum_E S_O(E) e^{-(beta - beta_0) E} / sum_E H(E) e^{-(beta - beta_0) E}``.
    Reliable while the reweighted energy distribution stays inside the sampled one,
    roughly ``|beta - beta_0| sigma_E <~ 1-2`` (sigma_E the run's energy spread).

    Parameters
    ----------
    hist : BlockedHistogram of the run at T_0 = hist.T.
    T : float or array_like, shape (n_T,), target temperatures.
    weights : optional bootstrap block multiplicities, shape (n_blocks,).

    Returns
    -------
    dict of ndarray, shape (n_T,), keys :data:`OBSERVABLES`.
    """
    T = np.atleast_1d(np.asarray(T, dtype=np.float64))
    H, S = hist.totals(weights)
    lam = -(1.0 / T[:, None] - 1.0 / hist.T) * hist.levels[None, :].astype(np.float64)
    return histogram_observables(hist.levels, H, S, lam, T, hist.L * hist.L)


def _objective(f, E, logH, H, ln_n, n, betas):
    a = ln_n[:, None] - betas[:, None] * E[None, :] - f[:, None]
    D = special.logsumexp(a, axis=0)
    return float(H @ D + n @ f), a, D


def solve_log_partition(levels, H, n_eff, betas, lnZ_init=None, fs_iterations: int = 30,
                        tol: float = 1e-10, max_newton: int = 100) -> np.ndarray:
    """Relative lnZ_k of the multiple-histogram equations, lnZ_0 = 0.

    Parameters
    ----------
    levels : ndarray, shape (n_levels,), total energies present in any run.
    H : ndarray, shape (n_levels,), combined effective histogram sum_k H_k / g_k, all > 0.
    n_eff : ndarray, shape (R,), effective measurements per run.
    betas : ndarray, shape (R,), inverse temperatures of the runs.
    lnZ_init : optional starting values, shape (R,) (a warm start skips the FS iterations).
    fs_iterations : FS self-consistent iterations before the Newton steps (cold start only).
    tol : convergence tolerance on every lnZ_k.

    Returns
    -------
    ndarray, shape (R,): lnZ_k - lnZ_0.
    """
    E = np.asarray(levels, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    n = np.asarray(n_eff, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    logH = np.log(H)
    ln_n = np.log(n)
    if lnZ_init is None:
        f = special.logsumexp(logH[None, :] - betas[:, None] * E[None, :], axis=1)
    else:
        f = np.asarray(lnZ_init, dtype=np.float64).copy()
        fs_iterations = 0
    f -= f[0]
    for _ in range(fs_iterations):
        D = special.logsumexp(ln_n[:, None] - betas[:, None] * E[None, :] - f[:, None], axis=0)
        new = special.logsumexp(logH[None, :] - betas[:, None] * E[None, :] - D[None, :], axis=1)
        new -= new[0]
        done = np.max(np.abs(new - f)) < tol
        f = new
        if done:
            return f
    # FS iteration converges linearly, slowly when neighbouring histograms barely overlap;
    # Newton on the convex objective (with a backtracking line search) finishes quadratically.
    phi, a, D = _objective(f, E, logH, H, ln_n, n, betas)
    for _ in range(max_newton):
        pi = np.exp(a - D[None, :])
        grad = n - pi @ H
        hess = np.diag(pi @ H) - (pi * H[None, :]) @ pi.T
        red = hess[1:, 1:]
        ridge = 1e-12 * max(float(np.trace(red)), 1.0)
        step = np.zeros_like(f)
        step[1:] = np.linalg.solve(red + ridge * np.eye(red.shape[0]), grad[1:])
        t = 1.0
        while True:
            trial = f - t * step
            phi_t, a_t, D_t = _objective(trial, E, logH, H, ln_n, n, betas)
            if phi_t <= phi + 1e-12 * abs(phi) or t < 1e-6:
                break
            t /= 2
        f, phi, a, D = trial, phi_t, a_t, D_t
        if np.max(np.abs(t * step)) < tol:
            break
    return f


@dataclass(frozen=True)
class MultiHistogram:
    """The solved multiple-histogram density of states of one lattice size.

    Attributes
    ----------
    L : int
    temperatures : ndarray, shape (R,), the runs' temperatures.
    levels : ndarray, shape (n_levels,), union of the runs' energy levels.
    H : ndarray, shape (n_levels,), combined effective histogram.
    S : ndarray, shape (n_levels, 3), combined effective sums of |m|, m^2, m^4.
    n_eff : ndarray, shape (R,), effective measurements per run.
    lnZ : ndarray, shape (R,), relative log partition functions, lnZ[0] = 0.
    """

    L: int
    temperatures: np.ndarray
    levels: np.ndarray
    H: np.ndarray
    S: np.ndarray
    n_eff: np.ndarray
    lnZ: np.ndarray

    def _log_denominator(self):
        E = self.levels.astype(np.float64)
        betas = 1.0 / self.temperatures
        return special.logsumexp(np.log(self.n_eff)[:, None] - betas[:, None] * E[None, :]
                                 - self.lnZ[:, None], axis=0)

    def observables(self, T) -> dict[str, np.ndarray]:
        """Reweighted observables at temperatures ``T`` (array_like, shape (n_T,))."""
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        lam = -self.levels[None, :].astype(np.float64) / T[:, None] - self._log_denominator()[None, :]
        return histogram_observables(self.levels, self.H, self.S, lam, T, self.L * self.L)

    def log_partition(self, T) -> np.ndarray:
        """lnZ(beta) - lnZ(beta_0) at temperatures ``T``, shape (n_T,)."""
        T = np.atleast_1d(np.asarray(T, dtype=np.float64))
        log_g = np.log(self.H) - self._log_denominator()
        return special.logsumexp(log_g[None, :] - self.levels[None, :] / T[:, None], axis=1)


def multi_histogram(hists: list[BlockedHistogram], weights=None, lnZ_init=None) -> MultiHistogram:
    """Combine runs of one L at several temperatures into one density of states.

    Parameters
    ----------
    hists : list of BlockedHistogram, same L, distinct T.
    weights : optional list of bootstrap block multiplicities, one (n_blocks,) array per run.
    lnZ_init : optional starting lnZ (warm start for bootstrap replicas).

    Returns
    -------
    MultiHistogram
    """
    if not hists or len({h.L for h in hists}) != 1:
        raise ValueError("hists must be a non-empty list of runs of one lattice size")
    order = np.argsort([h.T for h in hists])
    hists = [hists[i] for i in order]
    if weights is not None:
        weights = [weights[i] for i in order]
    levels = np.unique(np.concatenate([h.levels for h in hists]))
    H = np.zeros(levels.size)
    S = np.zeros((levels.size, 3))
    n_eff = np.empty(len(hists))
    for k, h in enumerate(hists):
        Hk, Sk = h.totals(None if weights is None else weights[k])
        g = max(2.0 * h.tau, 1.0)
        idx = np.searchsorted(levels, h.levels)
        H[idx] += Hk / g
        S[idx] += Sk / g
        n_eff[k] = Hk.sum() / g
    keep = H > 0
    levels, H, S = levels[keep], H[keep], S[keep]
    temps = np.array([h.T for h in hists])
    lnZ = solve_log_partition(levels, H, n_eff, 1.0 / temps, lnZ_init)
    return MultiHistogram(hists[0].L, temps, levels, H, S, n_eff, lnZ)


def histogram_overlap(h1: BlockedHistogram, h2: BlockedHistogram) -> float:
    """Overlap sum_E min(p1(E), p2(E)) of two runs' normalised energy histograms, in [0, 1].

    Reweighting between two runs is trustworthy only where their histograms overlap; below
    ~0.05 the multiple-histogram estimate between them rests on the tails of both.
    """
    levels = np.union1d(h1.levels, h2.levels)
    p = np.zeros((2, levels.size))
    for row, h in zip(p, (h1, h2)):
        H, _ = h.totals()
        row[np.searchsorted(levels, h.levels)] = H / H.sum()
    return float(np.minimum(p[0], p[1]).sum())


def find_peak(curve, lo: float, hi: float, n_grid: int = 161) -> tuple[float, float, bool]:
    """Maximum of a smooth scalar function on [lo, hi]: grid, then bounded Brent refinement.

    Parameters
    ----------
    curve : callable, ndarray (n,) -> ndarray (n,).
    lo, hi : float, the search interval.

    Returns
    -------
    T_peak, height : float
    at_edge : bool, True if the maximum is on the boundary (the true peak may lie outside).
    """
    grid = np.linspace(lo, hi, n_grid)
    values = curve(grid)
    i = int(np.nanargmax(values))
    if i in (0, n_grid - 1):
        return float(grid[i]), float(values[i]), True
    res = optimize.minimize_scalar(lambda t: -float(curve(np.array([t]))[0]),
                                   bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                                   options={"xatol": 1e-7 * (hi - lo)})
    return float(res.x), float(-res.fun), False


def bootstrap_replicas(hists: list[BlockedHistogram], n_boot: int, rng: np.random.Generator):
    """One list of block multiplicities per bootstrap replica (independent across runs)."""
    per_run = [bootstrap_weights(h.n_blocks, n_boot, rng) for h in hists]
    return [[w[r] for w in per_run] for r in range(n_boot)]
