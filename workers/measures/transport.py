"""Optimal transport on the Wishart cone (docs/conventions.md, "Optimal transport on the cone").

The seed paper (Combe 2025, Theorems 1-2) views Sigma = W W^T as a point of the Wishart cone and
learning as transport of a Gaussian latent measure. Between centred Gaussians the 2-Wasserstein
distance has the closed Bures form (Dowson & Landau 1982; Olkin & Pukelsheim 1982;
Bhatia, Jain & Lim 2019):

    W2^2(S1, S2) = tr S1 + tr S2 - 2 tr (S1^{1/2} S2 S1^{1/2})^{1/2}.

With S_k = W_k W_k^T the last trace equals the nuclear norm ||W1^T W2||_* (the singular values of
S1^{1/2} W2 and W1^T W2 coincide), so

    W2^2 = ||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_* = min_Q ||W1 - W2 Q||_F^2,

the minimum over orthogonal Q being reached at the polar factor of W2^T W1 (orthogonal
Procrustes, von Neumann's trace inequality). Everything is an n_h x n_h computation, invariant to
W -> W Q.
"""

import numpy as np
from scipy.stats import wasserstein_distance

from contract.estimators import bures_wasserstein_sq, check_factor

__all__ = ["bures_wasserstein_full", "transport_path", "wasserstein1"]


def _psd_eigvals_clean(lam, n):
    """Zero the eigenvalues that are roundoff of an exact zero (PSD, possibly rank-deficient).

    eigh leaves |lam| ~ n eps lambda_max where the true value is 0; their square roots
    (~1e-8 sqrt(lambda_max)) would otherwise pollute the traces at the 1e-8 level.
    """
    cut = n * np.finfo(np.float64).eps * max(float(np.max(lam)), 0.0)
    return np.where(lam > cut, lam, 0.0)


def _psd_sqrt(S):
    lam, U = np.linalg.eigh(0.5 * (S + S.T))
    return (U * np.sqrt(_psd_eigvals_clean(lam, S.shape[0]))) @ U.T


def bures_wasserstein_full(S1, S2):
    """Squared Bures-Wasserstein distance from the full N x N covariances (reference).

    ``tr S1 + tr S2 - 2 tr (S1^{1/2} S2 S1^{1/2})^{1/2}``, with PSD square roots by eigh;
    eigenvalues below N eps lambda_max (roundoff of exact zeros) are set to 0, so rank-deficient
    S are fine. O(N^3).

    Parameters
    ----------
    S1, S2 : array_like, shape (N, N), symmetric PSD

    Returns
    -------
    float, >= 0 (clipped for roundoff)
    """
    S1 = np.asarray(S1, dtype=np.float64)
    S2 = np.asarray(S2, dtype=np.float64)
    if S1.ndim != 2 or S1.shape[0] != S1.shape[1] or S1.shape != S2.shape:
        raise ValueError(f"S1 and S2 must be square with equal shapes, got {S1.shape}, {S2.shape}")
    R = _psd_sqrt(S1)
    M = R @ S2 @ R
    cross = np.sum(np.sqrt(_psd_eigvals_clean(np.linalg.eigvalsh(0.5 * (M + M.T)), M.shape[0])))
    return float(max(np.trace(S1) + np.trace(S2) - 2.0 * cross, 0.0))


def transport_path(Ws):
    """Bures-Wasserstein distances along a sequence of weight checkpoints.

    Parameters
    ----------
    Ws : sequence of array_like, each shape (n_visible, n_hidden_k)
        Weights at successive checkpoints, the first being the initialisation.

    Returns
    -------
    dict of ndarray, each shape (len(Ws),), float64
        w2_to_init[k] = W2(S_0, S_k); w2_to_prev[k] = W2(S_{k-1}, S_k); both exactly 0 at k = 0;
        path_length = cumsum(w2_to_prev). Values are distances W2 = sqrt(W2^2), not squares,
        so the path length is a length (W2 is a metric; path_length >= w2_to_init).
    """
    Ws = [check_factor(W, f"Ws[{k}]") for k, W in enumerate(Ws)]
    if not Ws:
        raise ValueError("Ws must contain at least one checkpoint")
    to_init = np.zeros(len(Ws))
    to_prev = np.zeros(len(Ws))
    for k in range(1, len(Ws)):
        to_init[k] = np.sqrt(bures_wasserstein_sq(Ws[0], Ws[k]))
        to_prev[k] = np.sqrt(bures_wasserstein_sq(Ws[k - 1], Ws[k]))
    return {"w2_to_init": to_init, "w2_to_prev": to_prev, "path_length": np.cumsum(to_prev)}


def wasserstein1(x, y):
    """1-D Wasserstein-1 distance between two empirical samples.

    ``W1 = int |F_x(t) - F_y(t)| dt`` for the empirical CDFs (Villani 2009, remark 2.19);
    delegates to `scipy.stats.wasserstein_distance`.

    Parameters
    ----------
    x : array_like, shape (n,)
    y : array_like, shape (m,)

    Returns
    -------
    float, >= 0
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("wasserstein1 needs non-empty samples")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("wasserstein1 needs finite samples")
    return float(wasserstein_distance(x, y))
