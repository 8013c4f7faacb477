"""Integrated autocorrelation time with Sokal's automatic windowing.

Convention, used everywhere in this project:

    tau_int = 1/2 + sum_{t >= 1} rho(t),

so that the variance of the mean of n correlated measurements with variance sigma^2 is
``2 tau_int sigma^2 / n`` and independent samples have ``tau_int = 1/2``. (emcee's ``tau`` is
``2 tau_int`` in this convention.) The sum is cut at the window M, the smallest M with
``M >= c tau_int(M)`` where ``tau_int(M) = 1/2 + sum_{t=1}^{M} rho(t)``; the statistical error of
the estimate is ``tau_int sqrt(2 (2M + 1) / n)`` (Madras & Sokal 1988; Sokal 1996, sec. 3).

Modelled on emcee's ``autocorr.py`` (Foreman-Mackey et al.).

References
----------
A. D. Sokal, "Monte Carlo Methods in Statistical Mechanics: Foundations and New Algorithms",
Cargese lectures (1996), sec. 3;
N. Madras and A. D. Sokal, J. Stat. Phys. 50, 109 (1988).
"""

import numpy as np

__all__ = [
    "autocorr_function",
    "auto_window",
    "integrated_time",
    "integrated_time_error",
    "AutocorrError",
]


class AutocorrError(Exception):
    """The series is shorter than ``tol`` integrated autocorrelation times.

    Attributes
    ----------
    tau : float
        The (unreliable) estimate, for callers that want to use it anyway.
    """

    def __init__(self, tau, *args):
        self.tau = tau
        super().__init__(*args)


def _next_pow_two(n):
    i = 1
    while i < n:
        i <<= 1
    return i


def _as_series(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-d series, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    return x


def autocorr_function(x):
    """Normalised autocorrelation function by FFT.

    ``rho(t) = C(t) / C(0)`` with ``C(t) = (1/n) sum_{s=0}^{n-1-t} (x_s - xbar)(x_{s+t} - xbar)``
    (the biased estimator, which keeps the sequence positive definite). The FFT is zero-padded
    to at least 2n so that it computes the linear, not circular, correlation.

    A constant series has no fluctuations to correlate; we return ``rho = (1, 0, 0, ...)``,
    the limit of white noise, so that it gets ``tau_int = 1/2`` and (with zero variance) a zero
    error bar.

    Parameters
    ----------
    x : array_like, shape (n,)

    Returns
    -------
    rho : ndarray of float64, shape (n,)
    """
    x = _as_series(x)
    n = x.size
    rho = np.zeros(n)
    rho[0] = 1.0
    if np.ptp(x) == 0:  # exact test: a rounded mean would leave a non-zero constant offset
        return rho
    f = np.fft.rfft(x - x.mean(), n=2 * _next_pow_two(n))
    acov = np.fft.irfft(f * np.conjugate(f))[:n]
    return acov / acov[0]


def auto_window(taus, c):
    """Sokal's window: the smallest M with ``M >= c * taus[M]`` (the last index if none).

    Parameters
    ----------
    taus : ndarray, shape (n,)
        Running estimates ``tau_int(M)`` for M = 0 .. n-1.
    c : float > 0

    Returns
    -------
    int
    """
    ok = np.arange(taus.size) >= c * taus
    return int(np.argmax(ok)) if np.any(ok) else taus.size - 1


def integrated_time(x, c=5.0, tol=50.0, quiet=False, return_window=False):
    """Integrated autocorrelation time ``tau_int = 1/2 + sum_{t=1}^{M} rho(t)``.

    Parameters
    ----------
    x : array_like, shape (n,)
        Time series, e.g. per-spin energies measured every sweep.
    c : float, default 5
        Window constant: M is the smallest lag with ``M >= c tau_int(M)``. Sokal recommends
        c of 4-6 for nearly exponential decay; the truncation bias is about
        ``-tau_exp exp(-c tau_int / tau_exp)``.
    tol : float, default 50
        The estimate is trusted only if ``n >= tol * tau_int``.
    quiet : bool, default False
        If True, return the estimate of a too-short series instead of raising.
    return_window : bool, default False
        Also return the window M.

    Returns
    -------
    tau : float
        In units of the spacing of ``x``; 1/2 for independent samples and for a constant series.
    M : int
        Only if ``return_window``.

    Raises
    ------
    AutocorrError
        If ``n < tol * tau`` and not ``quiet``; ``.tau`` holds the estimate.
    """
    x = _as_series(x)
    taus = np.cumsum(autocorr_function(x)) - 0.5
    window = auto_window(taus, c)
    tau = float(taus[window])
    if not quiet and tol * tau > x.size:
        raise AutocorrError(
            tau, f"the series has {x.size} points, fewer than {tol:g} x tau_int = {tol * tau:.0f}; "
                 f"tau_int = {tau:.3g} is not reliable: run a longer chain")
    return (tau, window) if return_window else tau


def integrated_time_error(tau, window, n):
    """Statistical error of a windowed estimate: ``tau sqrt(2 (2M + 1) / n)`` (Madras & Sokal 1988)."""
    return tau * np.sqrt(2.0 * (2.0 * window + 1.0) / n)
