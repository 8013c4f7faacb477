"""Block-Gibbs half-steps of an RBM on preallocated float32 buffers (training and sampling).

Each half-step is a BLAS matmul into a buffer followed by one fused numba pass
(:mod:`workers.rbm.kernels`): bias, sigmoid, Bernoulli draw and column sums. Conventions as in
:mod:`workers.rbm.model`: v in {-1,+1}, h in {0,1}, p(h_j = 1 | v) = sigmoid(b_j + (v W)_j),
p(v_i = +1 | h) = sigmoid(2 (a_i + (W h)_i)). A hidden half-step can first apply the global
spin-flip Metropolis-Hastings move to its rows (:func:`workers.rbm.kernels._flip_rows`).
"""

import numpy as np

from workers.rbm import kernels as K

__all__ = ["Buffers", "hidden_step", "visible_step", "gibbs_steps"]


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
    (:func:`workers.rbm.kernels._flip_rows`, one uniform of u per row); returns its flips.
    """
    np.matmul(v, W, out=ph)
    flips = K._flip_rows(ph, v, flip[0], b, flip[1]) if flip is not None else 0
    K._hidden_step(ph, b, np.float32(sign), buf.h[:len(v)], sample, lanes, buf.words, buf.sum_h)
    return flips


def visible_step(buf, m, W, a, v, lanes):
    """v <- v ~ p(v | buf.h[:m]) (+-1 float32)."""
    pv = buf.pv[:m]
    np.matmul(buf.h[:m], W.T, out=pv)
    K._visible_step(pv, a, v, lanes, buf.words, buf.sum_v)


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
