"""Fused float32 kernels for RBM training and Gibbs sampling.

One block-Gibbs half-step is a matmul (BLAS) followed by elementwise work: add the bias, take
the sigmoid, draw a Bernoulli variable per unit, and sum the columns for the bias gradient.
numpy does the elementwise part in five passes, ``scipy.special.expit`` costs about 2.4 ns per
float32 element and ``Generator.random`` about 1.2 ns per uniform. Here one numba pass does it
all at about 0.5 ns per element. It is vectorised (AVX2) because nothing in it branches:

- the sigmoid is ``1 / (1 + exp(-x))`` with Cephes' ``expf`` (degree-6 polynomial on
  ``[-ln2/2, ln2/2]``, scaled by ``2**n`` built from the exponent bits), within 2 ulp of the
  correctly rounded value on [-87, 87] (tested);
- the uniforms come from :data:`LANES` independent xorshift128+ generators advanced side by side
  (the loop over lanes vectorises), each 64-bit output giving two 24-bit uniforms.

The random stream, which the tests replay in plain numpy: a row of ``n`` units draws
``ceil(n / (2 LANES))`` blocks; a block advances every lane once, in lane order, and writes the
outputs to consecutive ``uint64`` words; read as little-endian ``uint32`` halves, half ``j``
gives uniform ``j`` of the row as ``(half >> 8) * 2**-24``. Uniforms past ``n`` are discarded.
The lane states are a C-contiguous ``uint64`` array of shape (2, LANES), never all zero in a
lane, drawn from the caller's ``numpy.random.Generator`` (:func:`make_lanes`).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from workers.ising.rng import XORSHIFT_A, XORSHIFT_B, XORSHIFT_C, GOLDEN

__all__ = ["LANES", "make_lanes", "words_per_row", "sigmoid32", "is_spin_array", "exp32", "fill_words"]

# The kernels (flip_rows, gather_rows, hidden_kernel, visible_kernel, update_parameters,
# update_centered, running_mean) take float32 C-contiguous buffers that workers.rbm.gibbs,
# workers.rbm.training and workers.rbm.ais allocate (ais also inlines exp32 and fill_words in its
# own kernels); the exp's rounding trick is exact in float32 only, so nothing outside the RBM
# room calls them.

LANES = 32
_U8 = np.uint32(8)
_TWO_M24 = np.float32(2.0 ** -24)

_LOG2E = np.float32(1.44269504088896341)
_LN2_HI, _LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)
_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                    4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
_P0, _P1, _P2, _P3, _P4, _P5 = _P
_ONE, _TWO, _ZERO, _HALF = np.float32(1.0), np.float32(2.0), np.float32(0.0), np.float32(0.5)
_XMAX = np.float32(87.0)   # exp(87) < float32 max; sigmoid(-87) ~ 1.6e-38
_MAGIC = np.float32(12582912.0)  # 1.5 * 2**23: (x + MAGIC) - MAGIC rounds x to an integer


def make_lanes(rng):
    """Lane states (2, LANES) uint64 drawn from a numpy Generator; no lane is all zero."""
    state = np.ascontiguousarray(rng.integers(0, 2**64, size=(2, LANES), dtype=np.uint64))
    dead = (state[0] == 0) & (state[1] == 0)
    state[1, dead] = GOLDEN
    return state


@njit(cache=True)
def words_per_row(n):
    """uint64 words one row of n uniforms takes: whole blocks of LANES words."""
    return -(-n // (2 * LANES)) * LANES


@intrinsic
def _as_float32(typingctx, bits):
    """Reinterpret int32 bits as a float32 (no conversion)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(inline="always", error_model="numpy")
def exp32(z):
    """exp(z) for float32 z in [-87, 87] (clamped), Cephes expf, about 1 ulp."""
    z = min(max(z, -_XMAX), _XMAX)
    n = (z * _LOG2E + _MAGIC) - _MAGIC
    r = z - n * _LN2_HI - n * _LN2_LO
    p = (((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5) * (r * r) + r + _ONE
    return p * _as_float32((np.int32(n) + np.int32(127)) << np.int32(23))


@njit(inline="always", error_model="numpy")
def _sigmoid(x):
    return _ONE / (_ONE + exp32(-x))


@njit(cache=True, error_model="numpy")
def _sigmoid32(x, out):
    for i in range(x.size):
        out[i] = _sigmoid(x[i])


def sigmoid32(x):
    """The kernels' sigmoid of ``x`` elementwise, as a new float32 array of x's shape."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    _sigmoid32(x.reshape(-1), out.reshape(-1))
    return out


@njit(cache=True)
def _all_pm1(x):
    bad = 0
    for i in range(x.size):  # no early exit: a branch-free pass vectorises (0.06 ns per entry)
        bad |= x[i] * x[i] != 1
    return bad == 0


def is_spin_array(V):
    """True if every entry of V is +1 or -1 (any shape, any numeric dtype)."""
    V = np.asarray(V)
    if V.dtype == np.int8:
        return bool(_all_pm1(np.ravel(V)))
    return bool(np.all(np.abs(V) == 1))


@njit(inline="always", error_model="numpy")
def fill_words(lanes, words, n_words):
    """Advance every lane n_words // LANES times, writing the outputs block by block."""
    s0 = lanes[0]
    s1 = lanes[1]
    for blk in range(n_words // LANES):
        base = blk * LANES
        for lane in range(LANES):
            x = s0[lane]
            y = s1[lane]
            words[base + lane] = x + y
            x ^= x << XORSHIFT_A
            s0[lane] = y
            s1[lane] = x ^ y ^ (x >> XORSHIFT_B) ^ (y >> XORSHIFT_C)


@njit(cache=True, error_model="numpy")
def gather_rows(V, idx, out, colsum):
    """out[r] <- float32(V[idx[r]]) for int8 V, and colsum <- column sums of out."""
    colsum[:] = 0.0
    n = V.shape[1]
    for r in range(idx.size):
        i = idx[r]
        for j in range(n):
            x = np.float32(V[i, j])
            out[r, j] = x
            colsum[j] += x


@njit(cache=True, error_model="numpy")
def hidden_kernel(pre, b, sign, h, sample, lanes, words, colsum):
    """Hidden half-step after ``pre = v W`` (in place), for each row r and unit j:

    p = sigmoid(pre + b); pre <- sign * p; with ``sample``, h <- 1.0 if u < p else 0.0.
    colsum <- column sums of p. ``words`` holds at least words_per_row(n_hidden) uint64.
    """
    m, n = pre.shape
    n_words = words_per_row(n)
    halves = words.view(np.uint32)
    colsum[:] = 0.0
    for r in range(m):
        if sample:
            fill_words(lanes, words, n_words)
            for j in range(n):
                p = _sigmoid(pre[r, j] + b[j])
                u = np.float32(np.int32(halves[j] >> _U8)) * _TWO_M24
                h[r, j] = _ONE if u < p else _ZERO
                pre[r, j] = sign * p
                colsum[j] += p
        else:
            for j in range(n):
                p = _sigmoid(pre[r, j] + b[j])
                pre[r, j] = sign * p
                colsum[j] += p


@njit(cache=True, error_model="numpy")
def visible_kernel(pre, a, v, lanes, words, colsum):
    """Visible half-step after ``pre = h W^T``: v <- +1 if u < sigmoid(2 (pre + a)) else -1.

    colsum <- column sums of v. ``pre`` is left as it was.
    """
    m, n = pre.shape
    n_words = words_per_row(n)
    halves = words.view(np.uint32)
    colsum[:] = 0.0
    for r in range(m):
        fill_words(lanes, words, n_words)
        for j in range(n):
            # u < sigmoid(y) = 1 / (1 + exp(-y)), without the division
            e = exp32(-_TWO * (pre[r, j] + a[j]))
            u = np.float32(np.int32(halves[j] >> _U8)) * _TWO_M24
            x = _ONE if u + u * e < _ONE else -_ONE
            v[r, j] = x
            colsum[j] += x


@njit(cache=True, error_model="numpy")
def update_parameters(W, vel_W, G, a, vel_a, sum_vp, sum_vn, b, vel_b, sum_hp, sum_hn, mu, lr, inv_m, l2, l1):
    """One momentum step on W, a and b from the minibatch sums (workers.rbm.training.train):

    vel_W <- mu vel_W + lr (G inv_m - l2 W - l1 sign W),  W <- W + vel_W;
    vel_a <- mu vel_a + lr (sum_vp - sum_vn) inv_m,       a <- a + vel_a; likewise b.
    """
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            w = W[i, j]
            sgn = _ONE if w > _ZERO else (-_ONE if w < _ZERO else _ZERO)
            g = G[i, j] * inv_m - l2 * w - l1 * sgn
            step = mu * vel_W[i, j] + lr * g
            vel_W[i, j] = step
            W[i, j] = w + step
    for theta, vel, pos, neg in ((a, vel_a, sum_vp, sum_vn), (b, vel_b, sum_hp, sum_hn)):
        for j in range(theta.size):
            step = mu * vel[j] + lr * ((pos[j] - neg[j]) * inv_m)
            vel[j] = step
            theta[j] += step


@njit(inline="always")
def _softplus64(z):
    """log(1 + exp(z)) in float64 without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


@njit(cache=True)
def flip_rows(pre, v, a, b, u):
    """Global spin-flip Metropolis-Hastings move on each row (chain) r, after ``pre = v W``.

    p(v) ~ exp(-F(v)) with F(v) = -a.v - sum_j softplus(b_j + (v W)_j), so the flip v -> -v is
    accepted with probability min(1, exp(F(v) - F(-v))) where F(v) - F(-v) =
    -2 a.v - sum_j [softplus(b_j + x_j) - softplus(b_j - x_j)], x = v W (float64 sums). The
    proposal is its own inverse, so the move leaves p(v) invariant. An accepted row has v and
    pre negated in place. ``u`` holds one uniform per row; returns the number of flips.
    """
    m, n_h = pre.shape
    flips = 0
    for r in range(m):
        av = 0.0
        for i in range(v.shape[1]):
            av += a[i] * v[r, i]
        d = 0.0
        for j in range(n_h):
            x = np.float64(pre[r, j])
            d += _softplus64(b[j] + x) - _softplus64(b[j] - x)
        log_ratio = -2.0 * av - d
        if log_ratio >= 0.0 or u[r] < math.exp(log_ratio):
            flips += 1
            for i in range(v.shape[1]):
                v[r, i] = -v[r, i]
            for j in range(n_h):
                pre[r, j] = -pre[r, j]
    return flips


@njit(cache=True, error_model="numpy")
def update_centered(W, vel_W, G, a, vel_a, sum_vp, sum_vn, b, vel_b, sum_hp, sum_hn, mu_v, lam,
                     mu, lr, inv_m, l2, l1):
    """One momentum step in centered coordinates (Montavon & Mueller 2012; Melchior et al. 2016).

    With offsets mu_v (visible) and lam (hidden) the centered gradient of W is
    G inv_m - mu_v dh^T - dv lam^T with dv = (sum_vp - sum_vn) inv_m, dh = (sum_hp - sum_hn)
    inv_m; the velocities live in centered coordinates (vel_a, vel_b for a_c = a + W lam and
    b_c = b + W^T mu_v) and the stored standard parameters follow them:
    W += vel_W, a += vel_a - vel_W lam, b += vel_b - vel_W^T mu_v.
    """
    n_v, n_h = W.shape
    shift_a = np.zeros(n_v, np.float32)
    shift_b = np.zeros(n_h, np.float32)
    for i in range(n_v):
        dv = (sum_vp[i] - sum_vn[i]) * inv_m
        for j in range(n_h):
            w = W[i, j]
            sgn = _ONE if w > _ZERO else (-_ONE if w < _ZERO else _ZERO)
            dh = (sum_hp[j] - sum_hn[j]) * inv_m
            g = G[i, j] * inv_m - mu_v[i] * dh - dv * lam[j] - l2 * w - l1 * sgn
            step = mu * vel_W[i, j] + lr * g
            vel_W[i, j] = step
            W[i, j] = w + step
            shift_a[i] += step * lam[j]
            shift_b[j] += step * mu_v[i]
    for i in range(n_v):
        step = mu * vel_a[i] + lr * ((sum_vp[i] - sum_vn[i]) * inv_m)
        vel_a[i] = step
        a[i] += step - shift_a[i]
    for j in range(n_h):
        step = mu * vel_b[j] + lr * ((sum_hp[j] - sum_hn[j]) * inv_m)
        vel_b[j] = step
        b[j] += step - shift_b[j]


@njit(cache=True, error_model="numpy")
def running_mean(avg, x, weight):
    """avg <- avg + weight (x - avg) elementwise (any shape, C-contiguous float32)."""
    fa, fx = avg.reshape(-1), x.reshape(-1)
    for i in range(fa.size):
        fa[i] += weight * (fx[i] - fa[i])
