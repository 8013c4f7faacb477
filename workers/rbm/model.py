"""Restricted Boltzmann machine with +-1 visible and 0/1 hidden units, trained by CD-k or PCD-k.

Conventions (docs/conventions.md, RBM; paper eqs. 15-17): v in {-1,+1}^{n_v}, h in {0,1}^{n_h},

    E(v, h) = -a.v - b.h - v^T W h,        W of shape (n_visible, n_hidden),
    F(v)    = -log sum_h exp(-E(v, h)) = -a.v - sum_j log(1 + exp(b_j + (v^T W)_j)),
    p(h_j = 1 | v)  = sigmoid(b_j + (v^T W)_j),
    p(v_i = +1 | h) = sigmoid(2 (a_i + (W h)_i)).

Training and Gibbs sampling run in float32: BLAS matmuls into preallocated buffers, each
followed by one fused numba pass (bias, sigmoid, Bernoulli draw, column sums; see
:mod:`workers.rbm.kernels`). Measurements (free energies, conditional probabilities) run in
float64.

References
----------
Hinton, G. E. (2002). Training products of experts by minimizing contrastive divergence.
Tieleman, T. (2008). Training RBMs using approximations to the likelihood gradient. ICML.
Hinton, G. E. (2012). A practical guide to training RBMs. LNCS 7700.
"""

import numpy as np
from scipy.special import expit

from contract.constants import LR_SCHEDULES, METHODS, RBM_INITS
from workers.rbm import gibbs
from workers.rbm import kernels as K
from workers.rbm.partition import rbm_free_energy
from workers.rbm.gibbs import as_spins
from workers.rbm.training import train

__all__ = ["RBM"]

_BIAS_INITS = ("zero", "data")
_PARAM_NAMES = ("n_hidden", "method", "k", "learning_rate", "momentum", "l1", "l2",
                "batch_size", "epochs", "lr_schedule", "init_std", "init", "visible_bias_init",
                "centering", "flip_moves", "averaging", "random_state")


class RBM:
    """Bernoulli-spin RBM (v in {-1,+1}, h in {0,1}) fitted by CD-k or PCD-k.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units n_h.
    method : {"cd", "pcd"}
        Negative phase: "cd" runs k Gibbs steps from the minibatch (Hinton 2002); "pcd" runs
        k steps from persistent chains, one per minibatch row, started at random training rows
        so that they begin near the data (Tieleman 2008).
    k : int
        Gibbs steps per update.
    learning_rate : float
        Base step size lr0.
    momentum : float in [0, 1)
        Classical (heavy-ball) momentum mu: velocity <- mu * velocity + lr_t * gradient,
        theta <- theta + velocity, for W, a and b alike. lr_t is not rescaled by (1 - mu), so
        the effective step in a steady direction is lr_t / (1 - mu) (Hinton 2012, sec. 9).
    l1, l2 : float
        Weight decay on W only: the gradient of W gets -l2 * W - l1 * sign(W).
    batch_size : int
        Minibatch size; the last minibatch of an epoch holds the remainder.
    epochs : int
        Full passes over the training data, each in a fresh random order.
    lr_schedule : {"constant", "linear", "inverse"}
        With p = t / T the fraction of the T = epochs * batches_per_epoch updates done:
        constant lr_t = lr0; linear lr_t = lr0 (1 - 0.9 p); inverse lr_t = lr0 / (1 + 9 p).
        Both decays end at 0.1 lr0.
    init_std : float
        W starts i.i.d. N(0, init_std^2) (the Gaussian start of the Wishart analysis); b = 0.
    init : {"gaussian", "site"}
        "site" adds :data:`workers.rbm.training.SITE_WEIGHT` to one weight per hidden unit, on
        the unit's anchor site (:func:`workers.rbm.training.anchor_sites`): each unit starts
        as a detector of one spin, the basin in which exact fits at L = 4 find the couplings.
    visible_bias_init : {"zero", "data"}
        a starts at 0, or at the base-rate biases of the training data
        (:func:`workers.rbm.partition.visible_bias_from_data`, pseudo-count 1).
    centering : bool
        Follow the gradient in centered coordinates (Montavon & Mueller 2012; Melchior, Fischer
        & Wiskott 2016): the energy is written -a_c.(v - mu) - b_c.(h - lam) - (v - mu)^T W
        (h - lam) with mu the data mean of v and lam a moving average (rate
        :data:`workers.rbm.training.OFFSET_RATE`) of p(h = 1 | v) over the minibatches (it starts at 1/2). The model
        is the same RBM (a = a_c - W lam, b = b_c - W^T mu are what is stored); only the
        direction of the steps changes, which makes them far better conditioned. See Notes.
    flip_moves : bool
        PCD only: once per update, before its k Gibbs steps, each persistent chain proposes
        v -> -v and accepts with probability min(1, exp(F(v) - F(-v))). The move leaves p(v)
        exact, and lets the chains cross between the two magnetisation sectors of an ordered
        model, which block Gibbs sampling almost never does.
    averaging : float in [0, 1)
        Polyak-Ruppert averaging: the fitted parameters are the mean of the parameters after
        each of the last ``averaging`` fraction of the updates (0: the last update's). A
        checkpoint inside that window sees the mean so far. PCD's persistent chains chase a
        moving model, so the last iterate oscillates about the fixed point; the mean does not.
    random_state : int, numpy.random.SeedSequence, numpy.random.Generator or None
        Turned into one Generator at the start of :meth:`fit`, which draws the initial weights,
        the PCD chains' starting rows, the seeds of the Gibbs samplers' random lanes
        (:func:`workers.rbm.kernels.make_lanes`) and the minibatch orders. An int or
        SeedSequence makes fit deterministic; a Generator is consumed, so two fits with it
        differ.

    Attributes
    ----------
    W_ : ndarray (n_visible, n_hidden) float32
    a_ : ndarray (n_visible,) float32
    b_ : ndarray (n_hidden,) float32
    init_std_ : float or None
        Standard deviation W was drawn with; None after :meth:`from_params`.
    visible_bias_init_ : {"zero", "data", "given"}
        How a_ was initialised ("given": :meth:`from_params`).
    epochs_done_, n_updates_ : int
        Progress of the last fit.
    flip_rate_ : float or None
        Accepted fraction of the global-flip moves of the last fit (None without them).
    hidden_offset_ : ndarray (n_hidden,) float32 or None
        The final hidden offsets lam of a centered fit.
    persistent_chains_ : ndarray (batch_size, n_visible) int8 or None
        Final PCD chains (None for CD): samples of the model at the end of training.

    Notes
    -----
    Minibatch gradient of the mean log-likelihood, the model average replaced by the CD-k /
    PCD-k negative samples, positive phase with p(h|v_data) rather than sampled h::

        dW = <v p(h|v)^T>_data - <v p(h|v)^T>_neg,  da = <v>_data - <v>_neg,
        db = <p(h|v)>_data - <p(h|v)>_neg.

    Centered (``centering=True``), with dv = da and dh = db above, the steps are taken in
    (W, a_c, b_c): dW_c = dW - mu dh^T - dv lam^T, da_c = dv, db_c = dh, and the stored
    parameters move by W += step_W, a += step_a - step_W lam, b += step_b - step_W^T mu.

    :meth:`fit` updates W_, a_, b_ in place: a callback that keeps them must copy them.
    """

    def __init__(self, n_hidden, method="cd", k=1, learning_rate=0.01, momentum=0.5, l1=0.0,
                 l2=1e-4, batch_size=100, epochs=10, lr_schedule="constant", init_std=0.01,
                 init="gaussian", visible_bias_init="data", centering=False, flip_moves=False, averaging=0.0,
                 random_state=None):
        self.n_hidden = n_hidden
        self.method = method
        self.k = k
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.l1 = l1
        self.l2 = l2
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr_schedule = lr_schedule
        self.init_std = init_std
        self.init = init
        self.visible_bias_init = visible_bias_init
        self.centering = centering
        self.flip_moves = flip_moves
        self.averaging = averaging
        self.random_state = random_state

    def get_params(self, deep=True):
        """Constructor arguments as a dict (scikit-learn convention)."""
        return {name: getattr(self, name) for name in _PARAM_NAMES}

    def set_params(self, **params):
        """Set constructor arguments; returns self."""
        for name, value in params.items():
            if name not in _PARAM_NAMES:
                raise ValueError(f"unknown RBM parameter {name!r}; valid: {_PARAM_NAMES}")
            setattr(self, name, value)
        return self

    @classmethod
    def from_params(cls, W, a, b, **params):
        """An RBM with given W (n_visible, n_hidden), a (n_visible,), b (n_hidden,).

        Used to reload a stored checkpoint (table ``rbm_params``) or an analytic model.
        Extra keyword arguments are constructor arguments.
        """
        W, a, b = (np.array(x, dtype=np.float32, ndmin=n) for x, n in ((W, 2), (a, 1), (b, 1)))
        if a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
            raise ValueError(f"shapes do not match: W {W.shape}, a {a.shape}, b {b.shape}")
        model = cls(n_hidden=W.shape[1], **params)
        model.W_, model.a_, model.b_ = W, a, b
        model.init_std_, model.visible_bias_init_ = None, "given"
        model.epochs_done_, model.n_updates_, model.persistent_chains_ = 0, 0, None
        model.flip_rate_, model.hidden_offset_ = None, None
        return model

    def _check_fitted(self):
        if not hasattr(self, "W_"):
            raise RuntimeError("this RBM has no parameters yet: call fit or from_params first")

    def validate(self, checkpoints):
        """Check the settings; the checkpoints as a set of epochs in [0, epochs]."""
        def num(x, lo, hi=np.inf, integer=False):
            types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            return isinstance(x, types) and not isinstance(x, bool) and lo <= x < hi

        p = self
        rules = [("n_hidden", num(p.n_hidden, 1, integer=True), "an int >= 1"),
                 ("method", p.method in METHODS, f"one of {METHODS}"),
                 ("k", num(p.k, 1, integer=True), "an int >= 1"),
                 ("learning_rate", num(p.learning_rate, 0) and p.learning_rate > 0, "> 0"),
                 ("momentum", num(p.momentum, 0, 1), "in [0, 1)"),
                 ("l1", num(p.l1, 0), ">= 0"), ("l2", num(p.l2, 0), ">= 0"),
                 ("batch_size", num(p.batch_size, 1, integer=True), "an int >= 1"),
                 ("epochs", num(p.epochs, 0, integer=True), "an int >= 0"),
                 ("lr_schedule", p.lr_schedule in LR_SCHEDULES, f"one of {LR_SCHEDULES}"),
                 ("init_std", num(p.init_std, 0), ">= 0"),
                 ("init", p.init in RBM_INITS, f"one of {RBM_INITS}"),
                 ("visible_bias_init", p.visible_bias_init in _BIAS_INITS,
                  f"one of {_BIAS_INITS}"),
                 ("centering", isinstance(p.centering, (bool, np.bool_)), "True or False"),
                 ("flip_moves", isinstance(p.flip_moves, (bool, np.bool_)), "True or False"),
                 ("averaging", num(p.averaging, 0, 1), "in [0, 1)")]
        for name, ok, rule in rules:
            if not ok:
                raise ValueError(f"{name} must be {rule}, got {getattr(self, name)!r}")
        checkpoints = sorted({int(c) for c in checkpoints})
        if checkpoints and not 0 <= checkpoints[0] <= checkpoints[-1] <= self.epochs:
            raise ValueError(f"checkpoints must lie in [0, epochs={self.epochs}], "
                             f"got {checkpoints}")
        return set(checkpoints)

    def fit(self, V, checkpoints=(), callback=None):
        """Fit to +-1 data.

        Parameters
        ----------
        V : array (n_samples, n_visible) of +-1 (int8 preferred).
        checkpoints : iterable of int in [0, epochs]
            Epochs after which ``callback`` is called.
        callback : callable(epoch, rbm) or None
            Called with epoch 0 after initialisation, before any update, and after every
            epoch listed in ``checkpoints``. W_, a_, b_ are live arrays: copy what you keep.

        Returns
        -------
        self
        """
        return train(self, V, checkpoints, callback)

    def _params32(self):
        """W_, a_, b_ as the C-contiguous float32 arrays the Gibbs kernels require (no copy if so)."""
        return tuple(np.ascontiguousarray(x, dtype=np.float32) for x in (self.W_, self.a_, self.b_))

    def free_energy(self, V):
        """F(v) of each row of V (n, n_visible), float64 (n,); see workers.rbm.partition.rbm_free_energy."""
        self._check_fitted()
        return rbm_free_energy(as_spins(V, self.W_.shape[0]), self.W_, self.a_, self.b_)

    def hidden_proba(self, V):
        """p(h_j = 1 | v) = sigmoid(b_j + (v^T W)_j) for V (n, n_visible); float64 (n, n_h)."""
        self._check_fitted()
        V = as_spins(V, self.W_.shape[0]).astype(np.float64)
        return expit(V @ self.W_.astype(np.float64) + self.b_)

    def visible_proba(self, H):
        """p(v_i = +1 | h) = sigmoid(2 (a_i + (W h)_i)) for H (n, n_hidden) of 0/1; float64."""
        self._check_fitted()
        H = np.asarray(H, dtype=np.float64)
        if H.ndim != 2 or H.shape[1] != self.W_.shape[1]:
            raise ValueError(f"H must have shape (n, {self.W_.shape[1]}), got {H.shape}")
        return expit(2.0 * (H @ self.W_.T.astype(np.float64) + self.a_))

    def sample_hidden(self, V, rng):
        """Draw h ~ p(h | v) for each row of V; int8 (n, n_hidden) of 0/1."""
        ph = self.hidden_proba(V)
        return (rng.random(ph.shape) < ph).astype(np.int8)

    def sample_visible(self, H, rng):
        """Draw v ~ p(v | h) for each row of H (n, n_hidden); int8 (n, n_visible) of +-1."""
        pv = self.visible_proba(H)
        return np.where(rng.random(pv.shape) < pv, 1, -1).astype(np.int8)

    def gibbs(self, V, k, rng):
        """k block-Gibbs steps v -> h -> v from each row of V; int8 (n, n_visible)."""
        self._check_fitted()
        V = as_spins(V, self.W_.shape[0])
        buf = gibbs.Buffers(V.shape[0], *self.W_.shape)
        buf.v[:] = V
        gibbs.gibbs_steps(buf, V.shape[0], int(k), *self._params32(), K.make_lanes(rng))
        return buf.v.astype(np.int8)

    def sample(self, n_chains, n_steps, rng, init=None, thin=1, burn_in=0, flip_moves=False):
        """Draws of p(v) from persistent block-Gibbs chains.

        Each chain does ``burn_in`` unrecorded steps, then ``n_steps`` steps of which every
        ``thin``-th is recorded. One step is v -> h -> v, preceded with ``flip_moves`` by a
        global spin-flip Metropolis-Hastings move (see ``flip_moves`` of the class), so that
        the chains of an ordered model visit both magnetisation sectors. The accepted fraction
        of those moves is left in ``self.sample_flip_rate_``.

        Parameters
        ----------
        n_chains : int
        n_steps : int
        rng : numpy.random.Generator
        init : array (n_chains, n_visible) of +-1, or None for independent uniform spins.
        thin : int
        burn_in : int

        Returns
        -------
        draws : ndarray (n_steps // thin * n_chains, n_visible) int8
            Record-major: row r * n_chains + c is chain c at record r, so
            ``draws.reshape(-1, n_chains, n_visible)[:, c]`` is the time series of chain c.
        """
        self._check_fitted()
        draws, self.sample_flip_rate_ = gibbs.sample_chains(*self._params32(), n_chains, n_steps, rng,
                                                            init, thin, burn_in, flip_moves)
        return draws
