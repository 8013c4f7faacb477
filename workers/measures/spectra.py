"""Wishart spectra of RBM weights and the Marchenko-Pastur reference.

Convention (docs/conventions.md, "Wishart"): W has shape (n_visible, n_hidden), Sigma = W W^T is
n_visible x n_visible of rank <= min(n_visible, n_hidden), and its non-zero eigenvalues are the
squared singular values of W, computed here from the small side. Theorem 1 of the seed paper
(Combe 2025) states Sigma is PSD of rank <= min(n, m); Theorem 2 that for i.i.d. Gaussian W it is
Wishart, whose spectrum at large size follows the Marchenko-Pastur law (Marchenko & Pastur 1967).

MP normalisation used throughout: with p = max(n_v, n_h), q = min(n_v, n_h), y = q/p <= 1 and
W_ij ~ N(0, sigma^2), the q non-zero eigenvalues of W W^T fill

    [lower, upper] = [sigma^2 (sqrt(p) - sqrt(q))^2, sigma^2 (sqrt(p) + sqrt(q))^2]

with density

    f(l) = sqrt((upper - l)(l - lower)) / (2 pi sigma^2 q l),    lower < l < upper.

There is no atom at zero because only the q eigenvalues of the small Gram matrix are modelled.
"""

import numpy as np

__all__ = [
    "wishart_eigenvalues",
    "marchenko_pastur_edges",
    "marchenko_pastur_pdf",
    "marchenko_pastur_cdf",
    "marchenko_pastur_quantile",
    "fit_bulk_sigma",
    "spectrum_summary",
]


def _validate_weights(W):
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"W must be a non-empty 2-D array (n_visible, n_hidden), got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite")
    return W


def _validate_mp_args(sigma, n_visible, n_hidden):
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0, got {sigma}")
    for name, n in (("n_visible", n_visible), ("n_hidden", n_hidden)):
        if isinstance(n, bool) or int(n) != n or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    p, q = max(int(n_visible), int(n_hidden)), min(int(n_visible), int(n_hidden))
    return sigma, p, q


def wishart_eigenvalues(W):
    """Non-zero eigenvalues of Sigma = W W^T, computed from the small side.

    Parameters
    ----------
    W : array_like, shape (n_visible, n_hidden)
        Weight matrix.

    Returns
    -------
    eigs : ndarray, shape (min(n_visible, n_hidden),), float64, descending
        Eigenvalues of W^T W if n_hidden <= n_visible, else of W W^T. These are the squared
        singular values of W, i.e. the spectrum of Sigma without its n_visible - min(...) exact
        zeros. Roundoff may leave values of order -eps * lambda_max; they are not clipped
        (`spectrum_summary` records the smallest one as data).

    Notes
    -----
    Cost O(n_v n_h min(n_v, n_h)) instead of O(n_v^3) for the full Sigma. Absolute accuracy is
    ~ eps * lambda_max (Gram-matrix eigenvalues), enough for the bulk and outliers, not for
    singular values below ~1e-8 * s_max.
    """
    W = _validate_weights(W)
    n_v, n_h = W.shape
    gram = W.T @ W if n_h <= n_v else W @ W.T
    return np.linalg.eigvalsh(gram)[::-1].copy()


def marchenko_pastur_edges(sigma, n_visible, n_hidden):
    """Support [lower, upper] of the MP law for the non-zero eigenvalues of W W^T.

    Parameters
    ----------
    sigma : float
        Standard deviation of the i.i.d. Gaussian entries of W.
    n_visible, n_hidden : int
        Shape of W.

    Returns
    -------
    lower, upper : float
        ``sigma^2 (sqrt(p) -/+ sqrt(q))^2`` with p = max, q = min of the two sizes
        (Marchenko & Pastur 1967; Bai & Silverstein 2010, ch. 3).
    """
    sigma, p, q = _validate_mp_args(sigma, n_visible, n_hidden)
    s2 = sigma * sigma
    return s2 * (np.sqrt(p) - np.sqrt(q)) ** 2, s2 * (np.sqrt(p) + np.sqrt(q)) ** 2


def marchenko_pastur_pdf(x, sigma, n_visible, n_hidden):
    """MP density of the non-zero eigenvalues of W W^T, W_ij ~ N(0, sigma^2).

    ``f(x) = sqrt((upper - x)(x - lower)) / (2 pi sigma^2 q x)`` on (lower, upper), 0 elsewhere,
    q = min(n_visible, n_hidden); it integrates to 1.

    Parameters
    ----------
    x : array_like
        Points at which to evaluate.
    sigma, n_visible, n_hidden
        As in `marchenko_pastur_edges`.

    Returns
    -------
    pdf : ndarray, same shape as x, float64
    """
    sigma, p, q = _validate_mp_args(sigma, n_visible, n_hidden)
    lower, upper = marchenko_pastur_edges(sigma, n_visible, n_hidden)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > lower) & (x < upper)
    xs = np.where(inside, x, 0.5 * (lower + upper))
    dens = np.sqrt((upper - xs) * (xs - lower)) / (2.0 * np.pi * sigma * sigma * q * xs)
    return np.where(inside, dens, 0.0)


def marchenko_pastur_cdf(x, sigma, n_visible, n_hidden):
    """Closed-form MP distribution function of the non-zero eigenvalues of W W^T.

    With t = x / (p sigma^2), y = q/p, m = 1 + y, h = 2 sqrt(y) and t = m - h cos(theta),
    theta in [0, pi], integrating the density gives

    ``F = (2/pi) [ sin(theta) / (2 sqrt(y)) + (1 + y) theta / (4 y)
                   - (1 - y) / (2 y) * arctan( (1 + sqrt(y)) tan(theta/2) / (1 - sqrt(y)) ) ]``

    which is 0 at the lower edge and 1 at the upper edge (the last term vanishes for y = 1).

    Parameters
    ----------
    x : array_like
        Points at which to evaluate.
    sigma, n_visible, n_hidden
        As in `marchenko_pastur_edges`.

    Returns
    -------
    cdf : ndarray, same shape as x, float64 in [0, 1]
    """
    sigma, p, q = _validate_mp_args(sigma, n_visible, n_hidden)
    y = q / p
    ry = np.sqrt(y)
    t = np.asarray(x, dtype=np.float64) / (p * sigma * sigma)
    cos_theta = np.clip((1.0 + y - t) / (2.0 * ry), -1.0, 1.0)
    theta = np.arccos(cos_theta)
    # arctan2 form of arctan(k tan(theta/2)) stays finite at y = 1 and theta = pi.
    phi = np.arctan2((1.0 + ry) * np.sin(0.5 * theta), (1.0 - ry) * np.cos(0.5 * theta))
    cdf = (2.0 / np.pi) * (
        np.sin(theta) / (2.0 * ry) + (1.0 + y) * theta / (4.0 * y) - (1.0 - y) / (2.0 * y) * phi
    )
    return np.clip(cdf, 0.0, 1.0)


def marchenko_pastur_quantile(prob, n_visible, n_hidden, sigma=1.0):
    """Quantiles of the MP law (inverse of :func:`marchenko_pastur_cdf`, bisection to 1e-12).

    Parameters
    ----------
    prob : array_like in [0, 1]
    n_visible, n_hidden, sigma : as in :func:`marchenko_pastur_edges`.

    Returns
    -------
    ndarray of prob's shape, float64
    """
    prob = np.asarray(prob, dtype=np.float64)
    lo, hi = marchenko_pastur_edges(sigma, n_visible, n_hidden)
    a, b = np.full(prob.shape, lo), np.full(prob.shape, hi)
    for _ in range(60):  # (hi - lo) / 2^60: far below any eigenvalue's roundoff
        mid = 0.5 * (a + b)
        below = marchenko_pastur_cdf(mid, sigma, n_visible, n_hidden) < prob
        a, b = np.where(below, mid, a), np.where(below, b, mid)
    return 0.5 * (a + b)


def fit_bulk_sigma(eigs, n_visible, n_hidden):
    """sigma of the MP law that best fits the lower half of a spectrum.

    Learning pulls modes out of the bulk and leaves the smallest eigenvalues to describe it, so
    sigma^2 is fitted by least squares of the lower half of the sorted eigenvalues x_(i)
    against the sigma = 1 MP quantiles Q_i at (i - 1/2) / q:
    sigma^2 = sum x_(i) Q_i / sum Q_i^2, i <= max(q // 2, 1). A few outliers do not move it;
    many (a quarter of the rank, measured) bias it up by 5-20%, since the bulk then belongs to a
    smaller matrix. One pass, no iteration: refitting without the outliers runs away for
    square W, whose bulk reaches down to 0.

    Parameters
    ----------
    eigs : array_like (q,), the q = min(n_v, n_h) non-zero eigenvalues of W W^T.
    n_visible, n_hidden : int.

    Returns
    -------
    float, sigma >= 0 (0 for an all-zero spectrum).
    """
    x = np.sort(np.clip(np.asarray(eigs, dtype=np.float64).ravel(), 0.0, None))
    q = x.size
    if q == 0:
        raise ValueError("eigs must be non-empty")
    k = max(q // 2, 1)
    Q = marchenko_pastur_quantile((np.arange(k) + 0.5) / q, n_visible, n_hidden)
    den = float(Q @ Q)
    if den == 0.0:  # y = 1 and q = 1: the one quantile sits at the lower edge 0
        return float(np.sqrt(x[0] / (np.sqrt(max(n_visible, n_hidden)) + 1) ** 2))
    return float(np.sqrt(max(float(x[:k] @ Q) / den, 0.0)))


def spectrum_summary(eigs, n_visible, n_hidden, rank_tol=None):
    """A Wishart spectrum against the Marchenko-Pastur law of its own bulk.

    A trained W is not i.i.d., so the MP law of the *initial* sigma says nothing once the
    weights have grown (every eigenvalue ends above its edge). Instead the MP law is fitted to
    the bulk of the current spectrum (:func:`fit_bulk_sigma`), and the signature is what stands
    out of it: eigenvalues above its upper edge, and the Kolmogorov-Smirnov distance between
    the remaining eigenvalues and that law. For an i.i.d. Gaussian W (the initialisation, the
    null) n_outliers is 0 or 1 (Tracy-Widom fluctuations of the top eigenvalue: measured at 256
    x 64, 0, 1, 2 in 84%, 15%, 0.3% of draws) and mp_ks is of order 1/sqrt(q).

    Parameters
    ----------
    eigs : array_like (k,), normally the q = min(n_v, n_h) eigenvalues from
        :func:`wishart_eigenvalues`.
    n_visible, n_hidden : int, shape of W.
    rank_tol : float, optional. Eigenvalues > rank_tol * lambda_max count towards the numerical
        rank; default max(n_v, n_h) * eps (Gram eigenvalues carry absolute errors of a few
        eps * lambda_max).

    Returns
    -------
    dict
        sigma_fit, mp_lower, mp_upper (edges of the fitted law), n_outliers (eigenvalues above
        mp_upper), mp_ks (KS distance of the eigenvalues below mp_upper to the fitted law),
        lambda_max,
        lambda_min, effective_rank (participation ratio (sum l)^2 / sum l^2 over l clipped at
        0; 0 for an all-zero spectrum), numerical_rank. W W^T is a Gram matrix taken from its
        small side, so it is PSD of rank <= min(n_v, n_h) by construction (Theorem 1):
        lambda_min and numerical_rank are data (roundoff-sized negatives, rank deficiency), not
        checks that could fail.
    """
    eigs = np.asarray(eigs, dtype=np.float64).ravel()
    if eigs.size == 0 or not np.all(np.isfinite(eigs)):
        raise ValueError("eigs must be a non-empty finite array")
    if rank_tol is None:
        rank_tol = max(int(n_visible), int(n_hidden)) * np.finfo(np.float64).eps
    if not (rank_tol >= 0):
        raise ValueError(f"rank_tol must be >= 0, got {rank_tol}")
    lam_max = float(max(eigs.max(), 0.0))
    pos = np.clip(eigs, 0.0, None)
    sum_sq = float(np.sum(pos * pos))
    sigma = fit_bulk_sigma(eigs, n_visible, n_hidden)
    if sigma > 0:
        lower, upper = marchenko_pastur_edges(sigma, n_visible, n_hidden)
        n_out = int(np.count_nonzero(eigs > upper))
        bulk = np.sort(eigs[eigs <= upper])
        cdf = marchenko_pastur_cdf(bulk, sigma, n_visible, n_hidden)
        k = np.arange(1, bulk.size + 1) / bulk.size
        ks = float(max(np.max(k - cdf), np.max(cdf - (k - 1.0 / bulk.size)))) if bulk.size else 1.0
    else:
        lower = upper = 0.0
        ks = float("nan")
    return {
        "sigma_fit": sigma, "mp_lower": float(lower), "mp_upper": float(upper),
        "n_outliers": n_out if sigma > 0 else 0,
        "mp_ks": ks, "lambda_max": float(eigs.max()), "lambda_min": float(eigs.min()),
        "effective_rank": float(np.sum(pos) ** 2 / sum_sq) if sum_sq > 0 else 0.0,
        "numerical_rank": int(np.count_nonzero(eigs > rank_tol * lam_max)) if lam_max > 0 else 0,
    }
