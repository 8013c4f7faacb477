"""Block-Gibbs half-steps of an RBM on preallocated float32 buffers (training and sampling).

Each half-step is a BLAS matmul into a buffer followed by one fused numba pass
(:mod:`workers.rbm.kernels`): bias, sigmoid, Bernoulli draw and column sums. Conventions as in
:mod:`workers.rbm.model`: v in {-1,+1}, h in {0,1}, p(h_j = 1 | v) = sigmoid(b_j + (v W)_j),
p(v_i = +1 | h) = sigmoid(2 (a_i + (W h)_i)). A hidden half-step can first apply the global
spin-flip Metropolis-Hastings move to its rows (:func:`workers.rbm.kernels.flip_rows`).
"""

import numpy as np

from workers.rbm import kernels as K

__all__ = ["as_spins", "Buffers", "hidden_step", "visible_step", "gibbs_steps", "sample_chains"]


def as_spins(V, n_visible=None, name="V"):
    """Validate a (n, n_visible) array of +-1 values and return it as int8."""
    V = np.asarray(V)
    if V.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_visible), got shape {V.shape}")
    if n_visible is not None and V.shape[1] != n_visible:
        raise ValueError(f"{name} must have {n_visible} columns, got {V.shape[1]}")
    if not K.is_spin_array(V):
        raise ValueError(f"{name} must contain only -1 and +1")
    return V.astype(np.int8, copy=False)


class Buffers:
    """float32 work arrays for up to m chains (rows) of an (n_visible, n_hidden) RBM.

    ``v``, ``ph``: the chains and p(h = 1 | v) (None with ``chains=False``: fit stacks its own);
    ``h`` sampled hidden units; ``pv`` visible pre-activations; ``words`` one row of random words.
    """

    def __init__(self, m, n_visible, n_hidden, chains=True):
        self.v = np.empty((m, n_visible), np.float32) if chains else None
        self.ph = np.empty((m, n_hidden), np.float32) if chains else None
        self.pv, self.h = np.empty((m, n_visible), np.float32), np.empty((m, n_hidden), np.float32)
        self.words = np.empty(max(K.words_per_row(n_visible), K.words_per_row(n_hidden)),
                              np.uint64)
        self.sum_v, self.sum_h = np.empty(n_visible, np.float32), np.empty(n_hidden, np.float32)


def hidden_step(buf, v, ph, W, b, lanes, sign=1.0, sample=True, flip=None):
    """ph <- sign * p(h = 1 | v) and, with ``sample``, buf.h[:m] <- h ~ p(h | v).

    ``flip = (a, u)``: first a global spin-flip Metropolis-Hastings move on every row of v
    (:func:`workers.rbm.kernels.flip_rows`, one uniform of u per row); returns its flips.
    """
    np.matmul(v, W, out=ph)
    flips = K.flip_rows(ph, v, flip[0], b, flip[1]) if flip is not None else 0
    K.hidden_kernel(ph, b, np.float32(sign), buf.h[:len(v)], sample, lanes, buf.words, buf.sum_h)
    return flips


def visible_step(buf, m, W, a, v, lanes):
    """v <- v ~ p(v | buf.h[:m]) (+-1 float32)."""
    pv = buf.pv[:m]
    np.matmul(buf.h[:m], W.T, out=pv)
    K.visible_kernel(pv, a, v, lanes, buf.words, buf.sum_v)


def gibbs_steps(buf, m, k, W, a, b, lanes, flip_rng=None):
    """k block-Gibbs steps v -> h -> v on the first m rows of buf.v, in place; with
    ``flip_rng`` each step starts with a global spin-flip move. Returns the flips."""
    v, ph = buf.v[:m], buf.ph[:m]
    flips = 0
    for _ in range(k):
        flip = (a, flip_rng.random(m)) if flip_rng is not None else None
        flips += hidden_step(buf, v, ph, W, b, lanes, flip=flip)
        visible_step(buf, m, W, a, v, lanes)
    return flips


def sample_chains(W, a, b, n_chains, n_steps, rng, init=None, thin=1, burn_in=0, flip_moves=False):
    """Persistent block-Gibbs chains of the RBM (W, a, b) (float32, C-contiguous): the draws
    (record-major, ``(n_steps // thin * n_chains, n_visible)`` int8) and the accepted fraction of
    flip moves (None without them). See :meth:`workers.rbm.model.RBM.sample`."""
    n_v, n_h = W.shape
    if n_chains < 1 or n_steps < 0 or thin < 1 or burn_in < 0:
        raise ValueError(f"need n_chains >= 1, n_steps >= 0, thin >= 1, burn_in >= 0; got "
                         f"{n_chains}, {n_steps}, {thin}, {burn_in}")
    buf = Buffers(n_chains, n_v, n_h)
    if init is None:
        buf.v[:] = np.where(rng.random((n_chains, n_v)) < 0.5, 1, -1)
    else:
        init = as_spins(init, n_v, "init")
        if init.shape[0] != n_chains:
            raise ValueError(f"init must have {n_chains} rows, got {init.shape[0]}")
        buf.v[:] = init
    lanes = K.make_lanes(rng)
    flip_rng = rng if flip_moves else None
    flips = gibbs_steps(buf, n_chains, burn_in, W, a, b, lanes, flip_rng)
    n_records = n_steps // thin
    out = np.empty((n_records, n_chains, n_v), np.int8)
    for r in range(n_records):
        flips += gibbs_steps(buf, n_chains, thin, W, a, b, lanes, flip_rng)
        out[r] = buf.v
    steps = burn_in + n_records * thin
    rate = flips / (steps * n_chains) if flip_moves and steps else None
    return out.reshape(n_records * n_chains, n_v), rate
