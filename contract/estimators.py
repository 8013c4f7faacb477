"""The estimators every layer must compute the same way: tau_int, Bures-Wasserstein, block sizes.

**Integrated autocorrelation time**, Sokal's automatic windowing. Convention, used everywhere in
this project:

    tau_int = 1/2 + sum_{t >= 1} rho(t),

so that the variance of the mean of n correlated measurements with variance sigma^2 is
``2 tau_int sigma^2 / n`` and independent samples have ``tau_int = 1/2``. (emcee's ``tau`` is
``2 tau_int`` in this convention.) The sum is cut at the window M, the smallest M with
``M >= c tau_int(M)`` where ``tau_int(M) = 1/2 + sum_{t=1}^{M} rho(t)``; the statistical error of
the estimate is ``tau_int sqrt(2 (2M + 1) / n)`` (Madras & Sokal 1988; Sokal 1996, sec. 3).
Modelled on emcee's ``autocorr.py`` (Foreman-Mackey et al.).

**Bures-Wasserstein distance** between N(0, W1 W1^T) and N(0, W2 W2^T) (docs/conventions.md,
"Optimal transport on the cone"): ``||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_*``, evaluated as a
Procrustes residual so that it keeps its relative accuracy when W1 ~ W2.

**Block sizes** of the RG block alignment: ``"auto"`` is every b dividing L with 2 <= b <= L/2;
a list keeps the b that divide L with b <= L/2 (one list serves every lattice size of a sweep).

References
----------
A. D. Sokal, "Monte Carlo Methods in Statistical Mechanics: Foundations and New Algorithms",
Cargese lectures (1996), sec. 3; N. Madras and A. D. Sokal, J. Stat. Phys. 50, 109 (1988);
R. Bhatia, T. Jain and Y. Lim, Expo. Math. 37, 165 (2019).
"""

import numpy as np

__all__ = ["AutocorrError", "autocorr_function", "auto_window", "integrated_time", "integrated_time_error",
           "chain_integrated_time", "bures_wasserstein_sq", "check_factor", "thin_factor", "block_sizes"]

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


def chain_integrated_time(x, c=5.0):
    """tau_int of one series, or of K independent chains of the same process.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, K)
        One column per chain.
    c : float
        Sokal window constant (:func:`integrated_time`).

    Returns
    -------
    float
        For 1-D input, :func:`integrated_time` (quiet). For 2-D input,
        ``1/2 + sum_{t=1}^{M} rho(t)`` with ``rho(t) = C(t) / C(0)``,
        ``C(t) = (1 / (K n)) sum_k sum_s (x_{s,k} - xbar)(x_{s+t,k} - xbar)`` about the mean
        ``xbar`` of *all* chains, and M Sokal's window on it. Pooling the chains makes the
        window far less noisy than K separate estimates, and the common mean avoids the
        -O(tau / n) bias that subtracting each short chain's own mean puts into every lag
        (at n = 30 tau it underestimated tau by about a third).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return integrated_time(x, c=c, quiet=True)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"x must be 1-d or 2-d (n, chains) and non-empty, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    n = x.shape[0]
    d = x - x.mean()
    if not np.any(d):
        return 0.5  # no fluctuations: white-noise limit, as autocorr_function does
    size = 1 << int(2 * n - 1).bit_length()  # zero padding: linear, not circular, correlation
    f = np.fft.rfft(d, n=size, axis=0)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=0)[:n].sum(axis=1)
    taus = np.cumsum(acov / acov[0]) - 0.5
    return float(taus[auto_window(taus, c)])


def check_factor(W, name):
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_visible, n_hidden), "
                         f"got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError(f"{name} must be finite")
    return W


def thin_factor(W):
    """A factor F with F F^T = W W^T and min(n_v, n_h) columns."""
    n_v, n_h = W.shape
    if n_h <= n_v:
        return W
    # W^T = Q R  =>  W W^T = R^T R, and R^T is n_v x n_v.
    return np.linalg.qr(W.T, mode="r").T


def bures_wasserstein_sq(W1, W2):
    """Squared 2-Wasserstein distance between N(0, W1 W1^T) and N(0, W2 W2^T), small side.

    Parameters
    ----------
    W1 : array_like, shape (n_visible, n_hidden_1)
    W2 : array_like, shape (n_visible, n_hidden_2)
        The hidden sizes may differ.

    Returns
    -------
    float
        ``||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_*``, >= 0.

    Notes
    -----
    Evaluated as the Procrustes residual ``||W1 - W2 Q||_F^2`` with Q = V U^T from the SVD
    ``W1^T W2 = U S V^T`` (after zero-padding both factors to a common width, which leaves
    W W^T unchanged; factors wider than n_visible are first reduced by QR). This equals the
    formula above exactly in exact arithmetic but is a sum of squares, so it is non-negative
    and keeps full relative accuracy when W1 ~ W2 (the three-term form cancels down to an
    absolute error ~ eps ||W||^2, i.e. ~1e-8 ||W|| on the distance).
    """
    W1 = thin_factor(check_factor(W1, "W1"))
    W2 = thin_factor(check_factor(W2, "W2"))
    if W1.shape[0] != W2.shape[0]:
        raise ValueError(f"W1 and W2 need the same n_visible, got {W1.shape[0]} and {W2.shape[0]}")
    k = max(W1.shape[1], W2.shape[1])
    W1 = np.pad(W1, ((0, 0), (0, k - W1.shape[1])))
    W2 = np.pad(W2, ((0, 0), (0, k - W2.shape[1])))
    U, _, Vt = np.linalg.svd(W1.T @ W2)
    R = W1 - W2 @ (Vt.T @ U.T)
    return float(np.sum(R * R))


def block_sizes(L: int, chosen="auto") -> list[int]:
    """The block sizes b analysed on an L x L lattice, ascending (see the module docstring)."""
    if chosen == "auto":
        return [b for b in range(2, L // 2 + 1) if L % b == 0]
    return sorted(b for b in chosen if L % b == 0 and b <= L // 2)
