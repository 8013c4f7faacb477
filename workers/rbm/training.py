"""The RBM's training loop: CD-k or PCD-k with momentum, centering, global-flip moves, a
learning-rate schedule and Polyak tail averaging (docs/conventions.md, "The training recipe").

One update is a BLAS matmul per half-step into preallocated float32 buffers plus one fused numba
pass (:mod:`workers.rbm.gibbs`); parameters are updated in place by the fused kernels.

References
----------
Hinton, G. E. (2002). Training products of experts by minimizing contrastive divergence.
Tieleman, T. (2008). Training RBMs using approximations to the likelihood gradient. ICML.
Melchior, J., Fischer, A. and Wiskott, L. (2016). How to center deep Boltzmann machines. JMLR 17.
"""

import numpy as np

from workers.rbm import gibbs
from workers.rbm import kernels as K
from workers.rbm.gibbs import as_spins
from workers.rbm.partition import visible_bias_from_data

__all__ = ["train", "learning_rate", "anchor_sites", "OFFSET_RATE", "SITE_WEIGHT"]

#: Rate of the moving average that tracks the hidden offsets lam (Melchior et al. 2016).
OFFSET_RATE = 0.01

#: ``init = "site"``: the weight each hidden unit starts with on its anchor site (on top of the
#: Gaussian draw). Exact fits at L = 4 put 4-6 there and ~2 beta on the site's neighbours.
SITE_WEIGHT = 3.0


def anchor_sites(n_visible, n_hidden):
    """The visible site each hidden unit is anchored on by ``init = "site"``.

    On an L x L lattice (n_visible = L^2, L even) the sites are taken class by class: first the
    2 x 2 sublattice (row and column even), then the rest of the checkerboard sublattice (both
    odd), then the other checkerboard colour; row-major within a class. So N/4 units sit on the
    2 x 2 sublattice, N/2 on one checkerboard colour, N on every site; beyond N the order repeats.
    Other sizes: sites spread evenly in raster order.
    """
    L = int(round(np.sqrt(n_visible)))
    if L * L == n_visible and L % 2 == 0:
        r, c = np.divmod(np.arange(n_visible), L)
        order = np.argsort(np.select([(r % 2 == 0) & (c % 2 == 0), (r % 2 == 1) & (c % 2 == 1),
                                      (r % 2 == 0)], [0, 1, 2], 3), kind="stable")
    else:
        return np.arange(n_hidden) * n_visible // n_hidden % n_visible
    return order[np.arange(n_hidden) % n_visible]


def learning_rate(rbm, t, total):
    """The learning rate of update t of total under the RBM's schedule (linear: down to 0.1x;
    inverse: 1 / (1 + 9 t / total))."""
    p = t / max(total, 1)
    if rbm.lr_schedule == "linear":
        return rbm.learning_rate * (1.0 - 0.9 * p)
    if rbm.lr_schedule == "inverse":
        return rbm.learning_rate / (1.0 + 9.0 * p)
    return rbm.learning_rate


def train(rbm, V, checkpoints=(), callback=None):
    """Fit ``rbm`` (a :class:`workers.rbm.model.RBM`) to +-1 data; see :meth:`RBM.fit`."""
    checkpoints = rbm.validate(checkpoints)
    V = as_spins(V)
    n, n_v = V.shape
    n_h, m_max, k = int(rbm.n_hidden), min(int(rbm.batch_size), n), int(rbm.k)
    rng = np.random.default_rng(rbm.random_state)

    rbm.init_std_ = float(rbm.init_std)
    rbm.visible_bias_init_ = rbm.visible_bias_init
    rbm.W_ = rng.normal(0.0, rbm.init_std_, size=(n_v, n_h)).astype(np.float32)
    if rbm.init == "site":
        rbm.W_[anchor_sites(n_v, n_h), np.arange(n_h)] += np.float32(SITE_WEIGHT)
    rbm.b_ = np.zeros(n_h, np.float32)
    rbm.a_ = (visible_bias_from_data(V).astype(np.float32) if rbm.visible_bias_init == "data"
               else np.zeros(n_v, np.float32))
    rbm.epochs_done_, rbm.n_updates_, rbm.persistent_chains_ = 0, 0, None
    rbm.flip_rate_, rbm.hidden_offset_ = None, None
    if callback is not None:
        callback(0, rbm)

    W, a, b = rbm.W_, rbm.a_, rbm.b_
    vel_W, vel_a, vel_b, G = np.zeros_like(W), np.zeros_like(a), np.zeros_like(b), np.empty_like(W)
    # Rows [0, m) of VV/PP: negative chains (PCD's persist there), -p(h|v); rows [m, 2m): the
    # minibatch, p(h|v). One matmul VV^T PP is then <v p(h|v)>_data - <v p(h|v)>_neg.
    VV, PP = np.empty((2 * m_max, n_v), np.float32), np.empty((2 * m_max, n_h), np.float32)
    buf = gibbs.Buffers(m_max, n_v, n_h, chains=False)
    sum_vp, sum_php = np.empty(n_v, np.float32), np.empty(n_h, np.float32)
    if rbm.method == "pcd":
        VV[:m_max] = V[rng.choice(n, size=m_max, replace=False)]
    lanes = K.make_lanes(rng)
    starts = range(0, n, m_max)
    total = int(rbm.epochs) * len(starts)
    mu = np.float32(rbm.momentum)
    l1, l2 = np.float32(rbm.l1), np.float32(rbm.l2)
    flip = rbm.method == "pcd" and bool(rbm.flip_moves)
    flips = proposals = 0
    if rbm.centering:
        mu_v = (V.sum(axis=0, dtype=np.int64) / n).astype(np.float32)
        lam = np.full(n_h, 0.5, np.float32)
        nu = np.float32(OFFSET_RATE)
    # Polyak-Ruppert: the mean of the parameters after updates avg_start + 1, ..., total
    avg_start = total - int(round(float(rbm.averaging) * total)) if rbm.averaging else total
    averaged, n_avg = None, 0

    for epoch in range(1, int(rbm.epochs) + 1):
        order = rng.permutation(n)
        for s in starts:
            idx = order[s:s + m_max]
            m = idx.size
            vn, vp, phn, php = VV[:m], VV[m:2 * m], PP[:m], PP[m:2 * m]
            # a short last minibatch uses the first m PCD chains; keep the others
            idle = VV[m:m_max].copy() if rbm.method == "pcd" and m < m_max else None
            K.gather_rows(V, idx, vp, sum_vp)
            # positive phase; for CD the chains start at the minibatch: h drawn from php
            gibbs.hidden_step(buf, vp, php, W, b, lanes, sample=rbm.method == "cd")
            np.copyto(sum_php, buf.sum_h)
            if rbm.method == "pcd":
                flips += gibbs.hidden_step(buf, vn, phn, W, b, lanes,
                                 flip=(a, rng.random(m)) if flip else None)
                proposals += m if flip else 0
            for step in range(k):
                gibbs.visible_step(buf, m, W, a, vn, lanes)
                gibbs.hidden_step(buf, vn, phn, W, b, lanes, sign=-1.0, sample=step < k - 1)
            np.matmul(VV[:2 * m].T, PP[:2 * m], out=G)
            lr, inv_m = np.float32(learning_rate(rbm, rbm.n_updates_, total)), np.float32(1.0 / m)
            if rbm.centering:
                lam *= np.float32(1.0) - nu
                lam += nu * inv_m * sum_php
                K.update_centered(W, vel_W, G, a, vel_a, sum_vp, buf.sum_v, b, vel_b,
                                   sum_php, buf.sum_h, mu_v, lam, mu, lr, inv_m, l2, l1)
            else:
                K.update_parameters(W, vel_W, G, a, vel_a, sum_vp, buf.sum_v, b, vel_b, sum_php,
                          buf.sum_h, mu, lr, inv_m, l2, l1)
            if idle is not None:
                VV[m:m_max] = idle
            rbm.n_updates_ += 1
            if rbm.n_updates_ > avg_start:
                n_avg += 1
                if averaged is None:
                    averaged = (W.copy(), a.copy(), b.copy())
                else:
                    for mean, x in zip(averaged, (W, a, b)):
                        K.running_mean(mean, x, np.float32(1.0 / n_avg))
        rbm.epochs_done_ = epoch
        if averaged is not None:  # what checkpoints and the caller see
            rbm.W_, rbm.a_, rbm.b_ = averaged
        if rbm.method == "pcd":
            rbm.persistent_chains_ = VV[:m_max].astype(np.int8)
        if flip:
            rbm.flip_rate_ = flips / max(proposals, 1)
        if rbm.centering:
            rbm.hidden_offset_ = lam.copy()
        if callback is not None and epoch in checkpoints:
            callback(epoch, rbm)
    return rbm
