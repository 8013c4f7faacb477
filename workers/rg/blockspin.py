"""Real-space RG flows of Ising configurations: majority-rule block spins, and effective
temperatures of any flow read off measured Monte Carlo curves.

Conventions (docs/conventions.md; :mod:`workers.ising.lattice`): spins are int8 in {-1, +1}, an L x L periodic
lattice, site ``i = row * L + col``, H = -sum_<ij> s_i s_j (J = 1), e = E/N, m = sum s / N.

A flow is a list of sample sets, level 0 the input. Two flows live here:
- block spins (Kadanoff 1966; Wilson 1975): level k+1 is the b x b majority rule of level k,
  so the lattice shrinks by b per level;
- the RBM flow (Iso, Shiba & Yokoo 2018; :func:`workers.rg.stacked.rbm_flow`): level k+1 is one
  v -> h -> v Gibbs step of a trained RBM from level k, at fixed lattice size.

A level is located on the temperature axis by matching what it looks like to the nearest-
neighbour Ising model of the same size: :func:`match_temperature` inverts one measured curve
(e.g. e(T) or U_4(T) at L'), :func:`match_temperature_joint` fits e and |m| together (a single
neural "thermometer" can mislead: Veiga & Vicente 2020). Stacked RBMs (Mehta & Schwab 2014)
and the RBM flow are in :mod:`workers.rg.stacked`.

References
----------
L. P. Kadanoff, Physics 2, 263 (1966); K. G. Wilson, Rev. Mod. Phys. 47, 773 (1975).
R. Veiga, R. Vicente, "Restricted Boltzmann machine flows and the critical temperature of
Ising models", arXiv:2006.10176 (2020).
F. N. Fritsch, R. E. Carlson, "Monotone piecewise cubic interpolation", SIAM J. Numer. Anal.
17, 238 (1980).
"""

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq

from workers.measures.free_energy import ising_energy
from workers.ising.observables import thermodynamics

__all__ = [
    "majority_rule",
    "blockspin_levels",
    "configuration_observables",
    "match_temperature",
    "match_temperature_joint",
]

_OBSERVABLE_KEYS = ("e", "e_err", "m_abs", "m_abs_err", "binder", "binder_err")


def _as_lattices(configs, L=None, name="configs"):
    """(n, L, L) or (n, L*L) of +-1 -> int8 (n, L, L); L inferred from a square site count."""
    X = np.asarray(configs)
    if X.ndim == 2:
        n_sites = X.shape[1]
        if L is None:
            L = int(round(np.sqrt(n_sites)))
        if isinstance(L, bool) or int(L) != L or L < 1 or int(L) ** 2 != n_sites:
            raise ValueError(f"{name} has {n_sites} sites per row, not L*L for L = {L!r}")
        X = X.reshape(X.shape[0], int(L), int(L))
    elif X.ndim != 3 or X.shape[1] != X.shape[2]:
        raise ValueError(f"{name} must have shape (n, L, L) or (n, L*L), got {X.shape}")
    elif L is not None and int(L) != X.shape[1]:
        raise ValueError(f"{name} has L = {X.shape[1]}, but L = {L!r} was given")
    if X.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one configuration")
    if not np.all(np.abs(X) == 1):
        raise ValueError(f"{name} must contain only -1 and +1")
    return X.astype(np.int8, copy=False)


def majority_rule(configs, b, rng, L=None):
    """b x b majority-rule block spins.

    ``s'_{RC} = sign(sum_{0 <= r, c < b} s_{bR + r, bC + c})`` with blocks aligned at (0, 0);
    when the block sum is 0 (possible only for even b) the block spin is a fair coin flip.

    Parameters
    ----------
    configs : array_like, shape (n, L, L), or (n, L*L) with site row*L + col
        Configurations of +-1.
    b : int >= 1
        Block size; must divide L.
    rng : numpy.random.Generator
        Draws the tie-breaking coins (one per tied block, in C order of (n, R, C)); it is not
        used when nothing ties, so odd b consumes no random numbers.
    L : int, optional
        Linear size for flattened input (inferred from a square site count if omitted).

    Returns
    -------
    coarse : ndarray of int8, shape (n, L//b, L//b), entries +-1.

    References
    ----------
    L. P. Kadanoff, "Scaling laws for Ising models near Tc", Physics 2, 263 (1966).
    """
    X = _as_lattices(configs, L)
    n, L = X.shape[0], X.shape[1]
    if isinstance(b, (bool, float)) or int(b) != b or b < 1 or L % int(b):
        raise ValueError(f"block size b must be a positive integer dividing L = {L}, got {b!r}")
    b = int(b)
    Lc = L // b
    sums = X.reshape(n, Lc, b, Lc, b).sum(axis=(2, 4), dtype=np.int32)
    coarse = np.sign(sums).astype(np.int8)
    ties = coarse == 0
    n_ties = int(np.count_nonzero(ties))
    if n_ties:
        coarse[ties] = 2 * rng.integers(0, 2, size=n_ties, dtype=np.int8) - 1
    return coarse


def blockspin_levels(configs, b, rng, min_size=4, L=None):
    """The block-spin flow: level 0 is the input, level k the majority rule applied k times.

    Levels are added while the coarse lattice is at least ``min_size`` x ``min_size`` (and b
    divides the current size).

    Parameters
    ----------
    configs : array_like, shape (n, L, L) or (n, L*L)
    b : int >= 2
    rng : numpy.random.Generator
        Tie-breaking coins, drawn level by level.
    min_size : int >= 1
    L : int, optional
        Linear size for flattened input.

    Returns
    -------
    levels : list of int8 ndarrays, level k of shape (n, L / b**k, L / b**k)
    """
    X = _as_lattices(configs, L)
    if isinstance(b, (bool, float)) or int(b) != b or b < 2:
        raise ValueError(f"block size b must be an integer >= 2, got {b!r}")
    if isinstance(min_size, bool) or int(min_size) != min_size or min_size < 1:
        raise ValueError(f"min_size must be a positive integer, got {min_size!r}")
    levels = [X]
    while levels[-1].shape[1] % b == 0 and levels[-1].shape[1] // b >= min_size:
        levels.append(majority_rule(levels[-1], b, rng))
    return levels


def configuration_observables(configs, T, L=None):
    """e, |m| and the Binder cumulant of a set of configurations, with errors.

    e = E/N from the nearest-neighbour periodic energy of the (possibly coarse) lattice
    (J = 1, :func:`workers.measures.free_energy.ising_energy`), m = sum s / N,
    U_4 = 1 - <m^4> / (3 <m^2>^2). The rows are meant to be (nearly) independent, e.g.
    thinned Monte Carlo samples or their block spins; the errors come from
    :func:`workers.ising.observables.thermodynamics` (integrated autocorrelation time of the row
    order for e and |m|, block jackknife for U_4), which reduces to ``sqrt(var / n)`` for
    independent rows and stays honest if neighbouring rows are correlated (if they are
    anticorrelated, tau_int < 1/2, the independent-rows error ``sqrt(var / n)`` is used).

    Parameters
    ----------
    configs : array_like, shape (n, L, L) or (n, L*L), n >= 2
    T : float > 0
        Temperature the samples were drawn at (only scales C and chi, which are not returned).
    L : int, optional

    Returns
    -------
    dict
        e, e_err, m_abs, m_abs_err, binder, binder_err (floats), L (int), n (int).
    """
    X = _as_lattices(configs, L)
    n, L = X.shape[0], X.shape[1]
    if n < 2:
        raise ValueError(f"need at least 2 configurations, got {n}")
    flat = X.reshape(n, L * L)
    e = ising_energy(flat, L) / (L * L)
    m = flat.mean(axis=1, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # a negative tau_int, handled below
        th = thermodynamics(e, m, L, T)
    out = {key: float(th[key]) for key in _OBSERVABLE_KEYS}
    # Anticorrelated rows (e.g. Wolff samples at low T alternate in sign, and an RBM step that
    # is not spin-flip symmetric turns that into alternating |m|) give tau_int < 1/2, even < 0
    # and so a nan error; 1/2, the independent-rows value, is conservative for them.
    for key, tau in (("e", th["tau_int_e"]), ("m_abs", th["tau_int_m"])):
        if not tau >= 0.5:
            x = e if key == "e" else np.abs(m)
            out[key + "_err"] = float(np.std(x, ddof=1) / np.sqrt(n))
    out["L"], out["n"] = int(L), int(n)
    return out


def _curve_arrays(temperatures, curve, curve_err, name="curve"):
    T = np.asarray(temperatures, dtype=np.float64)
    c = np.asarray(curve, dtype=np.float64)
    s = np.zeros_like(c) if curve_err is None else np.asarray(curve_err, dtype=np.float64)
    if T.ndim != 1 or T.size < 2 or c.shape != T.shape or s.shape != T.shape:
        raise ValueError(f"temperatures, {name} and {name}_err must be 1-d of equal length "
                         f">= 2, got shapes {T.shape}, {c.shape}, {s.shape}")
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
        raise ValueError(f"temperatures, {name} and {name}_err must be finite")
    if np.any(s < 0):
        raise ValueError(f"{name}_err must be >= 0")
    order = np.argsort(T)
    T, c, s = T[order], c[order], s[order]
    if np.any(np.diff(T) <= 0):
        raise ValueError("temperatures must be distinct")
    return T, c, s


def _crossing_interval(T, c, s, value):
    """Index i of the one grid interval where the curve crosses ``value``, or None.

    None when no interval or several intervals cross (the curve is not monotone there at the
    resolution of its noise), or the crossing interval is flat: c_{i+1} = c_i, or the change
    is smaller than its own standard error sqrt(sigma_i^2 + sigma_{i+1}^2).
    """
    d = c - value
    # an interval crosses if its end points straddle the value; a node hit exactly is
    # counted once (by the interval to its right, or the last interval for the last node)
    crossing = np.flatnonzero(((d[:-1] < 0) & (d[1:] > 0)) | ((d[:-1] > 0) & (d[1:] < 0))
                              | (d[:-1] == 0))
    if d[-1] == 0 and (crossing.size == 0 or crossing[-1] != T.size - 2):
        crossing = np.append(crossing, T.size - 2)
    if crossing.size != 1:
        return None
    i = int(crossing[0])
    dc = c[i + 1] - c[i]
    if dc == 0 or abs(dc) < np.hypot(s[i], s[i + 1]):
        return None
    return i


def _pchip_match(T, c, s, value, value_err, i):
    """Root of the monotone cubic (PCHIP) interpolant in [T_i, T_{i+1}], and its error."""
    P = PchipInterpolator(T, c)
    fa, fb = float(P(T[i])) - value, float(P(T[i + 1])) - value
    # P reproduces its nodes only to rounding (-1.1e-16 measured), so a value that is a grid
    # point's own measurement (the flow's step 0 at its source temperature) can leave both ends
    # of the interval on one side: the root is that node
    if c[i] == value or c[i + 1] == value:
        root = T[i] if c[i] == value else T[i + 1]
    elif fa * fb > 0:
        root = T[i] if abs(fa) <= abs(fb) else T[i + 1]
    else:
        root = brentq(lambda t: P(t) - value, T[i], T[i + 1], xtol=1e-14 * T[i + 1])
    slope = float(P.derivative()(root))
    if slope == 0:
        return float("nan"), float("nan")
    # dP(root)/dc_j by central differences: PCHIP's slope limiter makes P non-linear in c,
    # but piecewise smooth; only the (at most 4) points around the interval matter
    var, h = value_err ** 2, 1e-6 * (np.ptp(c) or 1.0)
    for j in range(max(0, i - 1), min(T.size, i + 3)):
        up, down = c.copy(), c.copy()
        up[j] += h
        down[j] -= h
        dP = (PchipInterpolator(T, up)(root) - PchipInterpolator(T, down)(root)) / (2 * h)
        var += (dP * s[j]) ** 2
    return float(root), float(np.sqrt(var) / abs(slope))


def match_temperature(value, value_err, temperatures, curve, curve_err=None, method="linear"):
    """The temperature at which a measured curve c(T) takes the value ``value``.

    ``method="linear"``: the curve is interpolated linearly between its grid points. With
    ``value`` crossing it in the interval [T_i, T_{i+1}] at fraction
    t = (value - c_i) / (c_{i+1} - c_i),

        T_eff = T_i + t (T_{i+1} - T_i),
        sigma_T^2 = (dT / dc)^2 [sigma_v^2 + (1 - t)^2 sigma_i^2 + t^2 sigma_{i+1}^2],

    with dT/dc = (T_{i+1} - T_i) / (c_{i+1} - c_i): first-order propagation of the
    independent errors of the value and of the two bracketing curve points. The interpolation
    error of a curved c(T), O((T_{i+1} - T_i)^2 c''), is not included; across a steep, curved
    stretch of a coarse grid (U_4 of a large lattice near Tc) it can exceed the error bar.

    ``method="pchip"``: the monotone cubic interpolant (Fritsch & Carlson 1980); T_eff is its
    root in the same interval, sigma_T^2 = [sigma_v^2 + sum_j (dP/dc_j)^2 sigma_j^2] / P'^2 at
    T_eff (dP/dc_j by central differences over the 4 points PCHIP uses). Its interpolation
    error, also not included, is 5-40 times smaller on a 9-point tanh test curve.

    First order is accurate while the curve noise is small against the change across one
    interval: on a straight line with sigma_c / |c_{i+1} - c_i| = 0.05, <z^2> = 1.03; at
    0.3 it is 1.35 (the crossing hops between intervals whose noisy slopes differ). MC
    energy curves on a grid of spacing 0.1 are in the first regime.

    Both return (nan, nan) when the value is outside the curve's range, when it crosses the
    curve in more than one interval (the curve is not monotone there at the resolution of its
    noise, e.g. the Binder cumulant's plateau at 2/3 deep in the ordered phase), or when the
    crossing interval is flat: c_{i+1} = c_i, or the change is smaller than its own standard
    error sqrt(sigma_i^2 + sigma_{i+1}^2), where first-order propagation has no meaning.

    Parameters
    ----------
    value, value_err : float
        Measured value and its standard error (>= 0).
    temperatures : array_like (n_T,), distinct (sorted here)
    curve, curve_err : array_like (n_T,)
        c(T_i) and its standard errors (None: exact curve, e.g. Kaufman's u(L, T)).
    method : {"linear", "pchip"}

    Returns
    -------
    T_eff, T_eff_err : float
    """
    if method not in ("linear", "pchip"):
        raise ValueError(f"method must be 'linear' or 'pchip', got {method!r}")
    T, c, s = _curve_arrays(temperatures, curve, curve_err)
    value, value_err = float(value), float(value_err)
    if not np.isfinite(value) or not np.isfinite(value_err) or value_err < 0:
        return float("nan"), float("nan")
    i = _crossing_interval(T, c, s, value)
    if i is None:
        return float("nan"), float("nan")
    if method == "pchip":
        return _pchip_match(T, c, s, value, value_err, i)
    dc, dT = c[i + 1] - c[i], T[i + 1] - T[i]
    t = (value - c[i]) / dc
    err = abs(dT / dc) * np.sqrt(value_err ** 2 + ((1 - t) * s[i]) ** 2 + (t * s[i + 1]) ** 2)
    return float(T[i] + t * dT), float(err)


def match_temperature_joint(values, values_err, temperatures, curves, curves_err=None):
    """The temperature that best matches several observables at once (e.g. e and |m|).

    Each curve c_k(T) is interpolated linearly, and T_eff minimises

        chi2(T) = sum_k (v_k - c_k(T))^2 / (sigma_{v,k}^2 + sigma_{c,k}(T)^2)

    over the grid's range. With T in [T_i, T_{i+1}] at fraction t, the variance of the
    interpolated curve is sigma_{c,k}(T)^2 = (1 - t)^2 sigma_{k,i}^2 + t^2 sigma_{k,i+1}^2.
    Within each grid interval the weights are frozen (first at t = 1/2, then twice more at the
    minimiser found), so chi2 is a quadratic whose minimiser is closed-form; the best interval
    wins. The error is the weighted-least-squares one, sigma_T^2 = 1 / sum_k c_k'^2 / w_k at
    T_eff (the Delta chi2 = 1 rule for one parameter), which with these weights is the
    first-order propagation of all the errors, treating the observables as independent
    (e and |m| from the same samples are correlated, so it is approximate there).

    Returns nan for all three outputs when the minimum lies on either end of the grid (the
    match is outside the curves' range), when every slope vanishes there, or when a value is
    not finite or has no error > 0 (e.g. a frozen coarse lattice whose samples are all equal).

    Parameters
    ----------
    values, values_err : array_like (n_obs,)
    temperatures : array_like (n_T,)
    curves, curves_err : array_like (n_obs, n_T); curves_err None means exact curves.

    Returns
    -------
    T_eff, T_eff_err, chi2_min : float
        chi2_min compares with a chi-square of n_obs - 1 degrees of freedom: a large value
        says no single nearest-neighbour temperature reproduces all observables.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    ve = np.asarray(values_err, dtype=np.float64).ravel()
    C = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    S = np.zeros_like(C) if curves_err is None else np.atleast_2d(
        np.asarray(curves_err, dtype=np.float64))
    if v.shape != ve.shape or C.shape != S.shape or C.shape[0] != v.size:
        raise ValueError(f"values ({v.shape}), values_err ({ve.shape}), curves ({C.shape}) and "
                         f"curves_err ({S.shape}) do not match")
    rows = [_curve_arrays(temperatures, C[k], S[k]) for k in range(v.size)]
    T = rows[0][0]
    C = np.array([r[1] for r in rows])
    S = np.array([r[2] for r in rows])
    nan3 = (float("nan"),) * 3
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(ve)) and np.all(ve > 0)):
        return nan3
    dT = np.diff(T)                                              # (n_T - 1,)
    slope = np.diff(C, axis=1) / dT                              # (n_obs, n_T - 1)
    # chi2 on interval i in x = T - T_i: sum_k (r_k - g_k x)^2 / w_k, r_k = v_k - c_k(T_i)
    r = v[:, None] - C[:, :-1]
    t = np.full(dT.shape, 0.5)
    for _ in range(3):
        w = ve[:, None] ** 2 + ((1 - t) * S[:, :-1]) ** 2 + (t * S[:, 1:]) ** 2
        A = np.sum(slope ** 2 / w, axis=0)
        B = np.sum(r * slope / w, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.clip(np.where(A > 0, B / A, 0.0), 0.0, dT)
        t = x / dT
    w = ve[:, None] ** 2 + ((1 - t) * S[:, :-1]) ** 2 + (t * S[:, 1:]) ** 2
    A = np.sum(slope ** 2 / w, axis=0)
    chi2 = np.sum((r - slope * x) ** 2 / w, axis=0)
    i = int(np.argmin(chi2))
    T_eff = T[i] + x[i]
    if T_eff <= T[0] or T_eff >= T[-1] or A[i] == 0:
        return nan3
    return float(T_eff), float(1.0 / np.sqrt(A[i])), float(chi2[i])
