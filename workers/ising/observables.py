"""Thermodynamic estimates with honest error bars from a Monte Carlo time series.

Definitions (docs/conventions.md; conventions in :mod:`workers.ising.lattice`), with ``<.>`` the average over
measurements, N = L**2 and beta = 1/T:

    C      = beta^2 N (<e^2> - <e>^2)           heat capacity per spin
    chi    = beta N (<m^2> - <|m|>^2)           susceptibility per spin (finite-L form)
    U_4    = 1 - <m^4> / (3 <m^2>^2)            Binder cumulant

Errors:

- means (e, |m|): ``err = sqrt(2 tau_int var / n)`` with tau_int from
  :func:`contract.estimators.integrated_time` (convention ``tau_int = 1/2 + sum_t rho(t)``);
- C, chi, U_4 are non-linear in the means, so they use a jackknife over K contiguous blocks.
  K is chosen so that each block spans at least 20 tau_max (tau_max the larger of tau_int(e)
  and tau_int(|m|)), which makes block means nearly independent, clipped to 20 <= K <= 50:
  at least 20 for a usable variance estimate (its relative error is about 1/sqrt(2(K-1))), at
  most 50 because more blocks buy little. If the series is shorter than 20 x 20 tau_max the
  blocks are shorter than 20 tau and the error is somewhat underestimated (by a fraction of
  order tau/B for blocks of length B). The oldest n mod K measurements are dropped for the
  jackknife. The reported C, chi and U_4 are the jackknife bias-corrected values
  ``K f(all) - (K - 1) mean_k f(without block k)``, which removes the O(tau/n) bias of
  ``<e^2> - <e>^2``.

Independent chains (the multi-spin sampler's 64 replicas): the series are 2-D, shape (n, K),
one column per chain, all of the same (L, T). Means are over all n K measurements. Because the
chains are independent, the error of a mean is the spread of the K chain means,
``sqrt(var_k(chain mean) / K)``, which stays honest even when a chain is not many tau_int long;
C, chi and U_4 use a jackknife that leaves out one whole chain at a time (K blocks). tau_int is
estimated from the autocovariance pooled over the chains about their common mean
(:func:`chain_integrated_time`). A single column is treated as a 1-D series.

References
----------
M. E. J. Newman and G. T. Barkema, "Monte Carlo Methods in Statistical Physics" (1999), sec. 3.4;
B. Efron, "The Jackknife, the Bootstrap and Other Resampling Plans" (1982).
"""

import numpy as np

from contract.estimators import chain_integrated_time

__all__ = [
    "thermodynamics",
    "jackknife_blocks",
    "n_jackknife_blocks",
]

_MIN_BLOCKS = 20
_MAX_BLOCKS = 50
_TAUS_PER_BLOCK = 20


def n_jackknife_blocks(n, tau):
    """Number of jackknife blocks for ``n`` measurements with autocorrelation time ``tau``.

    ``clip(n // ceil(20 tau), 20, 50)``, never more than ``n``.
    """
    per_block = int(np.ceil(_TAUS_PER_BLOCK * max(float(tau), 0.5)))
    return int(min(n, np.clip(n // per_block, _MIN_BLOCKS, _MAX_BLOCKS)))


def jackknife_blocks(columns, estimator, n_blocks):
    """Block jackknife of a function of means.

    Parameters
    ----------
    columns : ndarray, shape (n, q)
        Per-measurement quantities whose means the estimator takes (e.g. e, e^2).
    estimator : callable
        Maps a vector of q means to a scalar, e.g. ``lambda a: a[1] - a[0]**2``; it is called
        with shape (q,) or vectorised with shape (q, K).
    n_blocks : int >= 2

    Returns
    -------
    value : float
        Bias-corrected ``K f(all) - (K - 1) mean_k f_(k)``.
    error : float
        ``sqrt((K - 1)/K sum_k (f_(k) - mean f)^2)``.
    """
    columns = np.asarray(columns, dtype=np.float64)
    n = columns.shape[0]
    K = int(n_blocks)
    if K < 2 or K > n:
        raise ValueError(f"n_blocks must be in [2, n = {n}], got {n_blocks}")
    size = n // K
    data = columns[n - K * size:]  # drop the oldest points, the ones nearest to burn-in
    block_sums = data.reshape(K, size, -1).sum(axis=1)  # (K, q)
    total = block_sums.sum(axis=0)
    full = estimator(total / (K * size))
    leave_out = estimator(((total - block_sums) / ((K - 1) * size)).T)  # (K,)
    mean_leave_out = leave_out.mean()
    error = np.sqrt((K - 1) / K * np.sum((leave_out - mean_leave_out) ** 2))
    return float(K * full - (K - 1) * mean_leave_out), float(error)


def _mean_and_error(x, tau):
    n = x.size
    if n < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(np.sqrt(2.0 * tau * x.var(ddof=1) / n))


def thermodynamics(e_series, m_series, L, T):
    """Thermodynamic averages and their errors from per-spin energy and magnetization series.

    Parameters
    ----------
    e_series : array_like, shape (n,) or (n, K)
        Per-spin energy e = E/N of consecutive measurements (one per sweep); 2-D for K
        independent chains, one column each (see the module docstring).
    m_series : array_like, same shape as e_series
        Signed per-spin magnetization m = M/N of the same measurements.
    L : int
        Linear size, N = L**2.
    T : float > 0
        Temperature.

    Returns
    -------
    dict
        e, e_err, m_abs, m_abs_err, m2, m4, C, C_err, chi, chi_err, binder, binder_err,
        tau_int_e, tau_int_m (tau_int of e and of |m|, in measurements). Definitions and
        the error method are in the module docstring.
    """
    e = np.asarray(e_series, dtype=np.float64)
    m = np.asarray(m_series, dtype=np.float64)
    if e.ndim == 2 and e.shape[1] == 1:
        e, m = e[:, 0], m[:, 0]
    if e.ndim not in (1, 2) or e.shape != m.shape or e.size == 0:
        raise ValueError(f"e_series and m_series must be 1-d or 2-d (n, chains), equal and "
                         f"non-empty, got shapes {e.shape} and {m.shape}")
    T = float(T)
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T must be a finite number > 0, got {T}")
    N = int(L) ** 2
    beta = 1.0 / T
    m_abs = np.abs(m)
    tau_e = chain_integrated_time(e)
    tau_m = chain_integrated_time(m_abs)
    out = {"tau_int_e": tau_e, "tau_int_m": tau_m}
    if e.ndim == 1:
        out["e"], out["e_err"] = _mean_and_error(e, tau_e)
        out["m_abs"], out["m_abs_err"] = _mean_and_error(m_abs, tau_m)
        K = n_jackknife_blocks(e.size, max(tau_e, tau_m))
    else:
        out["e"], out["e_err"] = _chain_mean_and_error(e)
        out["m_abs"], out["m_abs_err"] = _chain_mean_and_error(m_abs)
        K = e.shape[1]
        # chain-major rows: jackknife block k is exactly chain k
        e, m_abs, m = e.T.ravel(), m_abs.T.ravel(), m.T.ravel()
    m2 = m * m
    out["m2"] = float(m2.mean())
    out["m4"] = float((m2 * m2).mean())

    if K < 2:
        for key in ("C", "chi", "binder"):
            out[key], out[key + "_err"] = float("nan"), float("nan")
        return out
    cols = np.column_stack([e, e * e, m_abs, m2, m2 * m2])
    out["C"], out["C_err"] = jackknife_blocks(
        cols, lambda a: beta * beta * N * (a[1] - a[0] ** 2), K)
    out["chi"], out["chi_err"] = jackknife_blocks(
        cols, lambda a: beta * N * (a[3] - a[2] ** 2), K)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["binder"], out["binder_err"] = jackknife_blocks(
            cols, lambda a: 1.0 - a[4] / (3.0 * a[3] ** 2), K)
    return out


def _chain_mean_and_error(x):
    """Mean over an (n, K) array and the standard error from the K independent chain means."""
    chain_means = x.mean(axis=0)
    return float(chain_means.mean()), float(chain_means.std(ddof=1) / np.sqrt(chain_means.size))
