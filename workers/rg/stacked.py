"""RG with RBMs: stacked RBMs trained greedily on Ising configurations, their receptive
fields, and the RBM flow.

Layer 1 is an RBM on the spins V (n_v = L*L); layer l+1 is an RBM trained on *sampled* hidden
activations of layer l, h ~ p(h | v), mapped {0, 1} -> {-1, +1} by s = 2h - 1, because the
visible units of :class:`workers.rbm.model.RBM` are +-1 (docs/conventions.md, RBM convention). The map is an
affine change of variables, s = 2h - 1, so an RBM on s is the same model family as one on h
(W_s = W_h / 2, a shifted visible bias); sampling rather than passing probabilities keeps each
layer's input a genuine binary configuration, as in a deep belief net (Hinton, Osindero & Teh
2006) and in Mehta & Schwab (2014).

How far a unit of layer l "sees" on the lattice is read off its projected receptive field,
the product W_1 W_2 ... W_l (Mehta & Schwab's fig. 4), and :func:`field_extent` measures its
size on the torus.

The RBM flow (Iso, Shiba & Yokoo 2018) iterates one trained RBM, v -> h -> v, at fixed lattice
size; :mod:`workers.rg.blockspin` reads the effective temperature of each step.

References
----------
P. Mehta, D. J. Schwab, "An exact mapping between the variational renormalization group and
deep learning", arXiv:1410.3831 (2014).
S. Iso, S. Shiba, S. Yokoo, "Scale-invariant feature extraction of neural network and
renormalization group flow", Phys. Rev. E 97, 053304 (2018).
G. E. Hinton, S. Osindero, Y.-W. Teh, Neural Computation 18, 1527 (2006).
"""

import numpy as np

from workers.rbm.model import RBM

__all__ = ["train_stack", "projected_fields", "field_extent", "rbm_flow"]


def _layer_kwargs(rbm_kwargs, n_layers):
    if rbm_kwargs is None:
        return [{} for _ in range(n_layers)]
    if isinstance(rbm_kwargs, dict):
        return [dict(rbm_kwargs) for _ in range(n_layers)]
    per_layer = [dict(k) for k in rbm_kwargs]
    if len(per_layer) != n_layers:
        raise ValueError(f"rbm_kwargs must be one dict or one per layer ({n_layers}), "
                         f"got {len(per_layer)}")
    return per_layer


def train_stack(V, hidden_sizes, rbm_kwargs, rng, checkpoints=()):
    """Greedy layer-wise training of a stack of RBMs.

    Parameters
    ----------
    V : array (n, n_v) of +-1
        Training configurations of layer 1 (site i = row*L + col).
    hidden_sizes : sequence of int >= 1
        n_1, n_2, ...: hidden units per layer.
    rbm_kwargs : dict, list of dicts (one per layer), or None
        Constructor arguments of :class:`workers.rbm.model.RBM` (method, k, learning_rate, epochs,
        ...); ``n_hidden`` and ``random_state`` are set here and must not be given.
    rng : numpy.random.Generator
        Layer l trains with its own child stream ``rng.spawn`` and the hidden samples that
        feed layer l+1 come from another, so the result is a function of rng's state.
    checkpoints : iterable of int
        Epochs at which every layer's parameters are copied (epoch 0, the initialisation,
        is always included).

    Returns
    -------
    dict
        rbms : list of fitted RBM, layer 1 first;
        data : list of int8 arrays, data[l] the +-1 training input of layer l+1 (data[0] is V,
        data[l] = 2 h - 1 with h ~ p(h | data[l-1]) of layer l), plus one final entry, the
        sampled +-1 activations of the top layer;
        params : list (per layer) of dicts epoch -> (W, a, b) copies (float32).
    """
    V = np.asarray(V)
    if V.ndim != 2 or not np.all(np.abs(V) == 1):
        raise ValueError(f"V must be a 2-D array of +-1, got shape {V.shape}")
    sizes = list(hidden_sizes)
    if not sizes or any(isinstance(s, bool) or int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"hidden_sizes must be a non-empty list of integers >= 1, got {sizes}")
    kwargs = _layer_kwargs(rbm_kwargs, len(sizes))
    for kw in kwargs:
        if "n_hidden" in kw or "random_state" in kw:
            raise ValueError("rbm_kwargs must not set n_hidden or random_state")
    data = [V.astype(np.int8)]
    rbms, params = [], []
    for n_h, kw in zip(sizes, kwargs):
        fit_rng, sample_rng = rng.spawn(2)
        snaps = {}

        def keep(epoch, model, snaps=snaps):
            snaps[epoch] = (model.W_.copy(), model.a_.copy(), model.b_.copy())

        rbm = RBM(n_hidden=int(n_h), random_state=fit_rng, **kw)
        rbm.fit(data[-1], checkpoints=checkpoints, callback=keep)
        rbms.append(rbm)
        params.append(snaps)
        data.append((2 * rbm.sample_hidden(data[-1], sample_rng) - 1).astype(np.int8))
    return {"rbms": rbms, "data": data, "params": params}


def projected_fields(Ws):
    """Receptive fields of every layer projected onto the lattice.

    F_1 = W_1 (N, n_1), F_2 = W_1 W_2 (N, n_2), ..., F_k = W_1 W_2 ... W_k (N, n_k): the linear
    part of how a layer-k unit depends on the spins (Mehta & Schwab 2014, fig. 4).

    Parameters
    ----------
    Ws : sequence of arrays, W_l of shape (n_{l-1}, n_l) with n_0 = N

    Returns
    -------
    list of float64 arrays, F_l of shape (N, n_l)
    """
    fields = []
    for l, W in enumerate(Ws):
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2:
            raise ValueError(f"W_{l + 1} must be 2-D, got shape {W.shape}")
        if fields and fields[-1].shape[1] != W.shape[0]:
            raise ValueError(f"W_{l + 1} has {W.shape[0]} rows but layer {l} has "
                             f"{fields[-1].shape[1]} units")
        fields.append(W.copy() if not fields else fields[-1] @ W)
    return fields


def _periodic_variance(p, L):
    """min over centres of sum_x p_x d(x, c)^2 on a ring of L sites, per column of p (L, n).

    Cutting the ring between sites k-1 and k and unwrapping to k, ..., k+L-1 turns it into a
    line; the ring's minimum over real centres equals the smallest of the L line variances
    (any centre's wrapped distances are the line distances of the cut at its antipode, and a
    line distance is never shorter than the ring distance).
    """
    x = np.arange(L)
    D = ((x[None, :] - x[:, None]) % L).astype(np.float64)   # D[k, x]: position after cut k
    m1 = D @ p
    m2 = (D * D) @ p
    return np.maximum(np.min(m2 - m1 * m1, axis=0), 0.0)


def field_extent(F, L):
    """Spatial extent of each receptive field on the L x L torus: its radius of gyration.

    With weights p_i = F_ij^2 / sum_i F_ij^2 on sites i = (x, y) = (row, col),

        R_j^2 = min_{c in torus} sum_i p_i d(i, c)^2
              = min_{c_x} sum_x p_x d(x, c_x)^2 + min_{c_y} sum_y p_y d(y, c_y)^2,

    d the shortest periodic distance and the minimum over real-valued centres (the Frechet
    variance on the torus; it separates into the two ring marginals). Values: a delta field
    0; a b x b block sqrt((b^2 - 1) / 6); the uniform field the maximum, sqrt((L^2 - 1) / 6).
    (Why the maximum: per axis the minimum over centres is at most the average over the L
    centres at half-integer positions for even L, integer positions for odd L, and for any
    site that average of d^2 is (L^2 - 1) / 12, which the uniform field attains.)

    The minimum over centres is used rather than the centre from angle-averaging (the
    circular mean), because the latter is undefined for symmetric fields (the uniform one)
    and can place the centre between two lumps, so that two antipodal spikes would come out
    wider (L^2/8 per axis) than the uniform field.

    Parameters
    ----------
    F : array_like (L*L, n_h)
        Fields, site i = row*L + col (e.g. from :func:`projected_fields`).
    L : int

    Returns
    -------
    extent : float64 (n_h,); nan for an all-zero field.
    """
    F = np.asarray(F, dtype=np.float64)
    if isinstance(L, bool) or int(L) != L or L < 1:
        raise ValueError(f"L must be a positive integer, got {L!r}")
    L = int(L)
    if F.ndim == 1:
        F = F[:, None]
    if F.ndim != 2 or F.shape[0] != L * L:
        raise ValueError(f"F must have shape (L*L = {L * L}, n_h), got {F.shape}")
    w = F * F
    norm = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (w / norm).reshape(L, L, -1)
    r2 = _periodic_variance(p.sum(axis=1), L) + _periodic_variance(p.sum(axis=0), L)
    return np.where(norm > 0, np.sqrt(r2), np.nan)


def rbm_flow(rbm, V0, n_steps, rng):
    """The RBM flow of Iso, Shiba & Yokoo (2018): repeated v -> h -> v Gibbs steps.

    ``v_{k+1} ~ p(v | h_k)``, ``h_k ~ p(h | v_k)`` with the trained RBM's conditionals
    (:meth:`workers.rbm.model.RBM.sample_hidden`, :meth:`workers.rbm.model.RBM.sample_visible`; docs/conventions.md,
    p(h_j = 1 | v) = sigmoid(b_j + (v^T W)_j), p(v_i = +1 | h) = sigmoid(2 (a_i + (W h)_i))).
    For an RBM trained at temperature T the flowing configurations drift towards the model's
    own fixed-point distribution; reading each step with
    :func:`workers.rg.blockspin.configuration_observables` and
    :func:`workers.rg.blockspin.match_temperature_joint` gives the flow of the effective temperature.

    Parameters
    ----------
    rbm : workers.rbm.model.RBM
        Fitted (or :meth:`~workers.rbm.model.RBM.from_params`).
    V0 : array_like (n, n_visible) of +-1
    n_steps : int >= 0
    rng : numpy.random.Generator

    Returns
    -------
    flow : list of n_steps + 1 int8 arrays (n, n_visible); flow[0] is V0 (as int8).
    """
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    V = np.asarray(V0)
    if V.ndim != 2 or not np.all(np.abs(V) == 1):
        raise ValueError(f"V0 must be a 2-D array of +-1, got shape {V.shape}")
    flow = [V.astype(np.int8)]
    for _ in range(int(n_steps)):
        H = rbm.sample_hidden(flow[-1], rng)
        flow.append(rbm.sample_visible(H, rng))
    return flow
