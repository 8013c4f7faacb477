"""The RBM partition function Z = sum_{v,h} exp(-E(v,h)): exact enumeration and AIS.

Conventions as in :mod:`workers.rbm.model` (docs/conventions.md, RBM): v in {-1,+1}^{n_v}, h in {0,1}^{n_h},
E(v,h) = -a.v - b.h - v^T W h. Summing either layer out analytically,

    ln Z = logsumexp_h [ b.h + sum_i log(2 cosh(a_i + (W h)_i)) ]          (enumerate h)
         = logsumexp_v [ a.v + sum_j log(1 + exp(b_j + (v^T W)_j)) ]       (enumerate v, = -F(v))

so exact evaluation costs 2^min(n_v, n_h) terms (float64). Larger models use annealed importance
sampling (Neal 2001; Salakhutdinov & Murray 2008) in float32 kernels (:mod:`workers.rbm.ais`).
"""

import numpy as np
from scipy.special import logsumexp

from contract.constants import LOG_PARTITION
from workers.rbm.ais import ais
from workers.rbm.kernels import is_spin_array

__all__ = ["rbm_free_energy", "log_partition", "log_partition_exact", "log_partition_bruteforce",
           "log_partition_ais", "visible_bias_from_data"]


def rbm_free_energy(V, W, a, b):
    """Free energy F(v) of each row of V, in float64 (paper eq. 17).

    F(v) = -a.v - sum_j log(1 + exp(b_j + sum_i W_ij v_i)), with log(1 + e^x) evaluated as
    logaddexp(0, x) so that large |x| neither overflows nor loses the linear tail.

    Parameters
    ----------
    V : array (n, n_visible) of +-1.
    W : array (n_visible, n_hidden).
    a : array (n_visible,).
    b : array (n_hidden,).

    Returns
    -------
    F : ndarray (n,) float64, so that p(v) = exp(-F(v)) / Z.
    """
    V = np.asarray(V, dtype=np.float64)
    x = V @ np.asarray(W, dtype=np.float64)
    x += np.asarray(b, dtype=np.float64)
    return -(V @ np.asarray(a, dtype=np.float64)) - np.logaddexp(0.0, x).sum(axis=1)


def _params64(W, a, b):
    W = np.array(W, dtype=np.float64, ndmin=2)
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
        raise ValueError(f"shapes do not match: W {W.shape}, a {a.shape}, b {b.shape}")
    return W, a, b


def _states(start, stop, n, spins):
    """Rows start..stop-1 of the 2^n enumeration: bit i of the row index is unit i."""
    bits = (np.arange(start, stop, dtype=np.int64)[:, None] >> np.arange(n)) & 1
    return 2.0 * bits - 1.0 if spins else bits.astype(np.float64)


def log_partition_exact(W, a, b, max_units=20, chunk=None, layer="auto"):
    """ln Z of an RBM by enumerating its smaller layer with a streaming log-sum-exp.

    Parameters
    ----------
    W : array (n_visible, n_hidden); a : array (n_visible,); b : array (n_hidden,).
    max_units : int
        Refuse to enumerate more than 2^max_units states.
    chunk : int or None
        States per block; None keeps a block at about 2^20 float64 numbers (8 MB).
    layer : {"auto", "hidden", "visible"}
        Which layer to enumerate; "auto" takes the smaller (hidden on a tie).

    Returns
    -------
    lnZ : float
        ln Z = logsumexp_h [b.h + sum_i log 2cosh(a_i + (W h)_i)] when enumerating h, or
        logsumexp_v [-F(v)] when enumerating v (module docstring).

    Raises
    ------
    ValueError
        If the enumerated layer has more than ``max_units`` units.
    """
    W, a, b = _params64(W, a, b)
    n_v, n_h = W.shape
    if layer == "auto":
        layer = "hidden" if n_h <= n_v else "visible"
    if layer not in ("hidden", "visible"):
        raise ValueError(f"layer must be 'auto', 'hidden' or 'visible', got {layer!r}")
    n_enum, n_other = (n_h, n_v) if layer == "hidden" else (n_v, n_h)
    if n_enum > max_units:
        raise ValueError(f"exact lnZ would enumerate 2^{n_enum} states of the {layer} layer; "
                         f"max_units={max_units} (use AIS)")
    total = 1 << n_enum
    chunk = int(chunk) if chunk else max(1, (1 << 20) // max(n_other, 1))
    pieces = []
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        if layer == "hidden":
            H = _states(start, stop, n_h, spins=False)
            x = H @ W.T
            x += a
            # log(2 cosh x) = logaddexp(x, -x): no overflow for large |x|
            terms = H @ b + np.logaddexp(x, -x).sum(axis=1)
        else:
            terms = -rbm_free_energy(_states(start, stop, n_v, spins=True), W, a, b)
        pieces.append(logsumexp(terms))
    return float(logsumexp(pieces))


def log_partition_bruteforce(W, a, b):
    """ln Z = logsumexp over every (v, h) of -E(v, h); a reference for tiny models.

    Parameters
    ----------
    W : array (n_visible, n_hidden); a : array (n_visible,); b : array (n_hidden,).
        n_visible + n_hidden <= 22.

    Returns
    -------
    lnZ : float
    """
    W, a, b = _params64(W, a, b)
    n_v, n_h = W.shape
    if n_v + n_h > 22:
        raise ValueError(f"brute force over 2^{n_v + n_h} states is too large (limit 2^22)")
    V = _states(0, 1 << n_v, n_v, spins=True)
    H = _states(0, 1 << n_h, n_h, spins=False)
    minus_E = (V @ a)[:, None] + (H @ b)[None, :] + V @ W @ H.T
    return float(logsumexp(minus_E))


def visible_bias_from_data(V, pseudo_count=1.0):
    """Visible biases of independent +-1 units matching the data means.

    With p_i = (n_i(+1) + c) / (n + 2c) (pseudo-count c keeps the bias finite for a unit that is
    constant in the data), a_i = logit(p_i) / 2 = arctanh(2 p_i - 1), because
    p(v_i = +1) = sigmoid(2 a_i) for a +-1 unit (Hinton 2012, sec. 8; Salakhutdinov & Murray
    2008, base-rate model).

    Parameters
    ----------
    V : array (n, n_visible) of +-1.
    pseudo_count : float >= 0.

    Returns
    -------
    a : ndarray (n_visible,) float64.
    """
    V = np.asarray(V)
    if V.ndim != 2 or not is_spin_array(V):
        raise ValueError(f"V must be a 2-D array of +-1, got shape {V.shape}")
    if pseudo_count < 0:
        raise ValueError(f"pseudo_count must be >= 0, got {pseudo_count}")
    # entries are +-1, so the count of +1 is (column sum + n) / 2, exact in integers
    sums = V.sum(axis=0, dtype=np.int32 if V.dtype == np.int8 else np.float64)
    n_plus = (sums.astype(np.float64) + V.shape[0]) / 2.0
    p = (n_plus + pseudo_count) / (V.shape[0] + 2.0 * pseudo_count)
    return 0.5 * (np.log(p) - np.log1p(-p))


def log_partition_ais(W, a, b, rng, data=None, **options):
    """ln Z of an RBM by annealed importance sampling (:func:`workers.rbm.ais.ais`).

    The base model has W = 0, b = 0 and visible biases fitted to ``data``
    (:func:`visible_bias_from_data`, pseudo-count 1), or 0 if data is None. ``options`` go to
    :func:`workers.rbm.ais.ais` (n_chains, start_steps, max_steps, flip_moves).

    Returns
    -------
    (lnZ, err) : (float, float); err is NaN when no run converged (the estimate is then a
    stochastic lower bound of ln Z).
    """
    W, a, b = _params64(W, a, b)
    a0 = np.zeros(W.shape[0]) if data is None else visible_bias_from_data(data)
    if a0.shape != (W.shape[0],):
        raise ValueError(f"data must have {W.shape[0]} columns, got {a0.shape[0]}")
    result = ais(W, a, b, a0, rng, **options)
    return result.lnZ, result.err


def log_partition(W, a, b, method="auto", rng=None, data=None, max_units=20):
    """ln Z of an RBM with an error bar and the method used.

    Parameters
    ----------
    W : array (n_visible, n_hidden); a : array (n_visible,); b : array (n_hidden,).
    method : {"auto", "exact", "ais"}
        "auto" is exact when min(n_visible, n_hidden) <= max_units, else AIS.
    rng : numpy.random.Generator, required for AIS.
    data : array (n, n_visible) of +-1 or None, the AIS base-rate data.
    max_units : int

    Returns
    -------
    (lnZ, err, method_used) : (float, float, str); err = 0.0 for "exact", NaN for an AIS
    estimate that did not converge.
    """
    if method not in LOG_PARTITION:
        raise ValueError(f"log_partition method must be 'auto', 'exact' or 'ais', got {method!r}")
    W = np.array(W, ndmin=2)
    if method == "exact" or (method == "auto" and min(W.shape) <= max_units):
        return log_partition_exact(W, a, b, max_units=max_units), 0.0, "exact"
    if rng is None:
        raise ValueError("log_partition with AIS needs rng (a numpy.random.Generator)")
    ln_z, err = log_partition_ais(W, a, b, rng, data=data)
    return ln_z, err, "ais"
