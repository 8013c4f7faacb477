"""Free-energy measures of an RBM trained on Ising samples (docs/conventions.md, "Free energies").

Conventions: Ising H(s) = -sum_<ij> s_i s_j on the L x L torus, J = 1, beta = 1/T, N = L^2,
site i = row * L + col (paper eq. 11). RBM as in :mod:`workers.rbm.model`: F(v) = -a.v
- sum_j log(1 + exp(b_j + (v^T W)_j)) (paper eq. 17), p_RBM(v) = exp(-F(v)) / Z_RBM.
"""

import numpy as np

from contract.estimators import integrated_time

from workers.exact import ising_energy  # re-exported: the Hamiltonian the RBM is compared with
from workers.rbm.partition import rbm_free_energy  # re-exported

__all__ = ["rbm_free_energy", "nll_per_spin", "kl_per_spin", "kl_estimate", "heff_fit",
           "heff_fidelity", "ising_energy", "bond_rbm", "HEFF_DEGREE"]

#: Degree of the polynomial in m that :func:`heff_fidelity` removes before the "beyond m" fit.
HEFF_DEGREE = 6


def _free_energies(rbm_or_params, V):
    if hasattr(rbm_or_params, "free_energy"):
        return rbm_or_params.free_energy(V)
    W, a, b = rbm_or_params
    return rbm_free_energy(V, W, a, b)


def nll_per_spin(rbm_or_params, V, lnZ):
    """Mean negative log-likelihood per spin, (mean_v F(v) + ln Z_RBM) / N.

    Parameters
    ----------
    rbm_or_params : RBM or tuple (W, a, b)
    V : array (n, N) of +-1, the configurations scored (e.g. held-out samples).
    lnZ : float, ln Z_RBM of the same model.

    Returns
    -------
    float, -(1/(n N)) sum_v log p_RBM(v).
    """
    V = np.asarray(V)
    return float((_free_energies(rbm_or_params, V).mean() + lnZ) / V.shape[1])


def kl_per_spin(F_data_mean, beta, N, u_exact, lnZ_rbm, lnZ_ising):
    """KL(p_Ising || p_RBM) / N from the data mean of F and exact Ising quantities.

    With log p(v) = -beta H(v) - ln Z_I and log q(v) = -F(v) - ln Z_R,
    KL = E_p[log p - log q] = <F>_p - beta <H>_p + ln Z_R - ln Z_I, and <H>_p = N u_exact:

        KL / N = (<F>_data - beta N u_exact + ln Z_RBM - ln Z_Ising) / N.

    <F>_data is a sample mean over Ising configurations, so the result carries its
    statistical error std(F) / sqrt(n_eff) / N.

    Parameters
    ----------
    F_data_mean : float, mean of F(v) over Ising samples at beta.
    beta : float, 1/T.
    N : int, number of spins L^2.
    u_exact : float, exact energy per spin <H>/N at beta on the same lattice.
    lnZ_rbm, lnZ_ising : float

    Returns
    -------
    float
    """
    return float((F_data_mean - beta * N * u_exact + lnZ_rbm - lnZ_ising) / N)


def _mean_error(x):
    """Mean of a series in chain order and its error sqrt(2 tau_int var / n) (Sokal window)."""
    n = x.size
    if n < 2:
        return float(x.mean()), float("nan")
    tau = max(integrated_time(x, quiet=True), 0.5)
    return float(x.mean()), float(np.sqrt(2.0 * tau * x.var(ddof=1) / n))


def kl_estimate(F, beta_H, beta, N, u_exact, lnZ_rbm, lnZ_ising, lnZ_rbm_err=0.0):
    """KL(p_Ising || p_RBM) / N with an error bar, beta H as a control variate.

    Since <beta H>_p = beta N u_exact is known exactly, for any c

        KL = <F - c (beta H - beta N u_exact)>_p - beta N u_exact + ln Z_RBM - ln Z_Ising,

    and c = cov(F, beta H) / var(beta H) minimises the variance of the sample mean: the part of
    F that tracks the energy (most of it, for a good model) no longer adds noise. Its error is
    sqrt(2 tau_int var(Y) / n) for Y = F - c beta H in the given (chain) order, plus the error
    of ln Z_RBM in quadrature. Estimating c from the same samples biases KL by O(1/n), far
    below the error.

    Parameters
    ----------
    F : array (n,), RBM free energies of Ising samples at beta (held-out, in chain order).
    beta_H : array (n,), beta H of the same samples.
    beta, N, u_exact : inverse temperature, number of spins, exact energy per spin.
    lnZ_rbm, lnZ_ising : float; lnZ_rbm_err : float, its standard error (0 when exact).

    Returns
    -------
    dict: kl_per_spin, kl_per_spin_err, kl_plain_err (the error of the plain mean of F, for
    comparison), cv_coefficient (c). With a single sample the errors are NaN.
    """
    F = np.asarray(F, dtype=np.float64)
    x = np.asarray(beta_H, dtype=np.float64)
    if F.shape != x.shape or F.ndim != 1 or F.size < 1:
        raise ValueError(f"F and beta_H must be 1-D of equal length >= 1, got {F.shape}, {x.shape}")
    dx = x - x.mean()
    sxx = dx @ dx
    c = float(dx @ (F - F.mean()) / sxx) if sxx > 0 else 0.0
    shift = beta * N * u_exact
    y = F - c * (x - shift)
    mean_y, err_y = _mean_error(y)
    _, err_plain = _mean_error(F)
    const = -shift + lnZ_rbm - lnZ_ising
    err_z = float(lnZ_rbm_err) if np.isfinite(lnZ_rbm_err) else float("nan")
    return {"kl_per_spin": float((mean_y + const) / N),
            "kl_per_spin_err": float(np.hypot(err_y, err_z) / N),
            "kl_plain_err": float(np.hypot(err_plain, err_z) / N), "cv_coefficient": c}


def heff_fit(F, beta_H):
    """Least-squares line F(v) = slope * beta H(v) + c: is F an effective Hamiltonian?

    Parameters
    ----------
    F : array (n,), RBM free energies of configurations.
    beta_H : array (n,), beta H(v) of the same configurations.

    Returns
    -------
    slope : float, cov(F, beta H) / var(beta H) (1 when F = beta H + const).
    r2 : float, 1 - SS_res / SS_tot of the fit (nan if F is constant).
    """
    F = np.asarray(F, dtype=np.float64)
    x = np.asarray(beta_H, dtype=np.float64)
    if F.shape != x.shape or F.ndim != 1 or F.size < 2:
        raise ValueError(f"F and beta_H must be 1-D of equal length >= 2, got {F.shape}, {x.shape}")
    dx, dF = x - x.mean(), F - F.mean()
    sxx = dx @ dx
    if sxx == 0.0:
        raise ValueError("beta_H is constant: the slope is undefined")
    slope = (dx @ dF) / sxx
    ss_tot = dF @ dF
    resid = dF - slope * dx
    r2 = 1.0 - (resid @ resid) / ss_tot if ss_tot > 0 else np.nan
    return float(slope), float(r2)


def _line(F, x):
    """(slope, r2) of the least-squares line F = slope x + c; NaN when undefined."""
    dx, dF = x - x.mean(), F - F.mean()
    sxx, ss_tot = dx @ dx, dF @ dF
    if sxx <= 0:
        return np.nan, np.nan
    slope = (dx @ dF) / sxx
    resid = dF - slope * dx
    return slope, (1.0 - (resid @ resid) / ss_tot if ss_tot > 0 else np.nan)


def _beyond_m(F, x, m, degree):
    """F and x with their least-squares polynomial in m (Legendre basis) removed."""
    basis = np.polynomial.legendre.legvander(np.clip(m, -1.0, 1.0), degree)
    coef, *_ = np.linalg.lstsq(basis, np.column_stack([F, x]), rcond=None)
    resid = np.column_stack([F, x]) - basis @ coef
    return resid[:, 0], resid[:, 1]


def heff_fidelity(F, beta_H, m, n_blocks=20, degree=HEFF_DEGREE):
    """How well F(v) acts as an effective Hamiltonian: raw and beyond the magnetisation.

    Raw: slope and R^2 of the line F = slope * beta H + c (:func:`heff_fit`). In the ordered
    phase both F (through -a.v and the hidden units' mean field) and beta H track m, so the raw
    R^2 is high even for a model that knows nothing but m. Beyond m: the same fit after
    removing from both F and beta H their least-squares polynomial of degree ``degree`` in m
    (a partial regression given m): slope_partial = 1 and R^2_partial = 1 for F = beta H +
    const, and R^2_partial ~ 0 for any F that is a function of m alone. Errors: a jackknife
    over ``n_blocks`` contiguous blocks of the samples in chain order, so autocorrelation
    within blocks is respected.

    Parameters
    ----------
    F, beta_H, m : arrays (n,), free energies, beta H and magnetisation per spin of the same
        configurations, in chain order.
    n_blocks : int >= 2, at most n.
    degree : int >= 0.

    Returns
    -------
    dict: heff_slope, heff_r2, heff_partial_slope, heff_partial_r2 and each with ``_err``; all
    NaN with fewer than 2 (degree + 2) samples.
    """
    F, x, m = (np.asarray(a, dtype=np.float64) for a in (F, beta_H, m))
    n = F.size
    names = ("heff_slope", "heff_r2", "heff_partial_slope", "heff_partial_r2")
    if not (F.shape == x.shape == m.shape and F.ndim == 1):
        raise ValueError(f"F, beta_H and m must be 1-D of equal length, got {F.shape}, {x.shape}, "
                         f"{m.shape}")
    if n < 2 * (degree + 2):  # too few samples for the fits and their errors: no numbers
        return {name + suffix: float("nan") for name in names for suffix in ("", "_err")}

    def stats(idx):
        raw = _line(F[idx], x[idx])
        part = _line(*_beyond_m(F[idx], x[idx], m[idx], degree))
        return np.array([*raw, *part])

    full = stats(np.arange(n))
    K = int(min(max(n_blocks, 2), n // (degree + 2)))
    edges = np.linspace(0, n, K + 1).astype(int)
    leave = np.array([stats(np.r_[0:edges[k], edges[k + 1]:n]) for k in range(K)])
    err = np.sqrt((K - 1) / K * np.sum((leave - leave.mean(axis=0)) ** 2, axis=0))
    out = {}
    for name, value, e in zip(names, full, err):
        out[name], out[name + "_err"] = float(value), float(e)
    return out


def bond_rbm(L, T):
    """An RBM whose marginal is exactly the L x L Ising Boltzmann distribution at T.

    One hidden unit per bond of the torus: unit 2 i + 0 joins site i to its right neighbour,
    unit 2 i + 1 to its down neighbour (2N units), each with weight w on both sites, hidden
    bias 0, and visible bias a_i = -w/2 per bond at i (a_i = -2w). Summing out the hidden unit
    of bond (i, j) gives exp(-w (v_i + v_j)/2) (1 + exp(w (v_i + v_j))) = 2 cosh w if
    v_i = v_j and 2 otherwise, i.e. 2 exp(beta (1 + v_i v_j)) when cosh w = exp(2 beta). So

        w = arccosh(exp(2 beta)),   F(v) = beta H(v) - 2 N (beta + ln 2),
        ln Z_RBM = ln Z_Ising + 2 N (beta + ln 2).

    Parameters
    ----------
    L : int >= 2
    T : float > 0

    Returns
    -------
    W : ndarray (L*L, 2 L*L) float64; a : ndarray (L*L,); b : ndarray (2 L*L,) of zeros.
    """
    if not (isinstance(L, (int, np.integer)) and L >= 2):
        raise ValueError(f"L must be an int >= 2, got {L!r}")
    if not T > 0:
        raise ValueError(f"T must be > 0, got {T!r}")
    beta, N = 1.0 / T, L * L
    w = np.arccosh(np.exp(2.0 * beta))
    site = np.arange(N)
    row, col = divmod(site, L)
    right = row * L + (col + 1) % L
    down = ((row + 1) % L) * L + col
    W = np.zeros((N, 2 * N))
    # the two ends of a bond are distinct sites when L >= 2, so no entry is written twice
    W[site, 2 * site] = w
    W[right, 2 * site] = w
    W[site, 2 * site + 1] = w
    W[down, 2 * site + 1] = w
    return W, np.full(N, -2.0 * w), np.zeros(2 * N)
