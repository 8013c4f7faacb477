"""Locating the phase transition: Binder crossings, reweighted peaks and finite-size fits.

* Binder crossings: U4(T) of two successive L cross near Tc because U4 is a scaling function of
  (T - Tc) L^{1/nu} (Binder 1981). The crossing is found on the difference
  D(T) = U4_{L2}(T) - U4_{L1}(T), which goes from + (below Tc, larger L more ordered) to -;
  a quadratic least-squares fit of D over the four grid points around the sign change
  interpolates it. Errors: the same construction on every bootstrap replica.
* Peaks of C and chi per L by single- and multiple-histogram reweighting
  (:mod:`analysis.reweighting`), so they land between grid temperatures; errors by the block
  bootstrap (the multiple-histogram solve is warm-started from the full-data solution).
* Finite-size scaling: T_peak(L) = Tc + a L^{-1/nu}; chi_max(L) = A L^{gamma/nu}
  (Fisher & Barber 1972; Ferrenberg & Landau, Phys. Rev. B 44, 5081 (1991)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from . import exact_reference as exact
from .resampling import BlockedHistogram
from .reweighting import (bootstrap_replicas, find_peak, histogram_overlap, multi_histogram,
                          reweight_single)

__all__ = ["binder_crossing", "binder_error", "binder_crossings", "binder_crossings_reweighted", "reweighting_reach", "reweighted_peaks", "fit_peak_shift",
           "fit_power_law"]


def binder_error(h: BlockedHistogram) -> float:
    """Standard error of a run's own U4 by the jackknife over its blocks (cheap: block sums)."""
    n = h.counts.sum(axis=1)
    s2, s4 = h.m_sums[:, :, 1].sum(axis=1), h.m_sums[:, :, 2].sum(axis=1)
    if n.size < 2:
        return float("nan")
    m2, m4 = (s2.sum() - s2) / (n.sum() - n), (s4.sum() - s4) / (n.sum() - n)
    u = 1.0 - m4 / (3.0 * m2**2)
    return float(np.sqrt((n.size - 1) / n.size * np.sum((u - u.mean()) ** 2)))


def binder_crossing(T, u_small, u_large, err_small=None, err_large=None) -> float:
    """Temperature where U4 of the larger lattice crosses U4 of the smaller one.

    Among the grid intervals where D = u_large - u_small changes sign from + to -, the steepest
    one is taken; with the errors of U4 given, the one that best splits the grid into D > 0
    below and D < 0 above: the largest sum of D/sigma_D over the points below it minus the same
    sum over the points above it (a change-point statistic: a sign change of noise in the
    disordered phase, or between two close points near Tc, does not move it). D is fitted by a quadratic over the grid points i-1 .. i+2 around the
    bracket [T_i, T_{i+1}] and its root inside the bracket returned (linear interpolation if
    the fit has none there).

    Parameters
    ----------
    T : array_like, shape (n_T,), ascending temperatures (shared by both lattices).
    u_small, u_large : array_like, shape (n_T,), U4 of the smaller and the larger lattice.

    Returns
    -------
    float, NaN if D never goes from + to -.
    """
    T = np.asarray(T, dtype=np.float64)
    D = np.asarray(u_large, dtype=np.float64) - np.asarray(u_small, dtype=np.float64)
    var = np.ones_like(D)
    if err_small is not None and err_large is not None:
        var = np.asarray(err_small, dtype=np.float64) ** 2 + np.asarray(err_large, dtype=np.float64) ** 2
        known = np.isfinite(var) & (var > 0)  # an error of 0 (exact data) or unknown: the smallest known
        var = np.where(known, var, var[known].min() if known.any() else 1.0)
    ok = np.isfinite(D)
    T, D, var = T[ok], D[ok], var[ok]
    brackets = np.flatnonzero((D[:-1] > 0) & (D[1:] <= 0))
    if brackets.size == 0:
        return float("nan")
    if err_small is None or err_large is None:
        i = int(brackets[np.argmax(D[brackets] - D[brackets + 1])])
    else:  # the split with the most significant + on its left and - on its right (a CUSUM)
        z = D / np.sqrt(var)
        left = np.cumsum(z)
        score = left[brackets] - (left[-1] - left[brackets])
        i = int(brackets[np.argmax(score)])
    lo, hi = T[i], T[i + 1]
    linear = lo + D[i] * (hi - lo) / (D[i] - D[i + 1])
    window = slice(max(i - 1, 0), min(i + 3, T.size))
    if T[window].size < 4:
        return float(linear)
    centre = 0.5 * (lo + hi)
    coef = np.polyfit(T[window] - centre, D[window], 2)
    roots = np.roots(coef)
    roots = roots[np.isreal(roots)].real + centre
    roots = roots[(roots >= lo) & (roots <= hi)]
    return float(roots[0]) if roots.size == 1 else float(linear)


def binder_crossings(table: pd.DataFrame, replicas: np.ndarray) -> pd.DataFrame:
    """Binder crossings of every pair of successive lattice sizes, with bootstrap errors.

    Parameters
    ----------
    table : DataFrame with columns L, T, binder (one row per run), e.g. from
        :func:`analysis.thermodynamics.bootstrap_observables`.
    replicas : ndarray, shape (n_boot, len(table)), bootstrap replicas of ``binder`` in the row
        order of ``table``.

    Returns
    -------
    DataFrame: L_small, L_large, T_cross, T_cross_err, U_cross, n_boot_valid, exact_Tc.
    Only temperatures present for both sizes are used.
    """
    rows = []
    sizes = sorted(table["L"].unique())
    for L1, L2 in zip(sizes[:-1], sizes[1:]):
        a = table.reset_index(drop=True)
        i1 = a.index[a["L"] == L1].to_numpy()
        i2 = a.index[a["L"] == L2].to_numpy()
        common = np.intersect1d(a.loc[i1, "T"].round(10), a.loc[i2, "T"].round(10))
        if common.size < 2:
            continue
        j1 = i1[np.isin(a.loc[i1, "T"].round(10), common)]
        j2 = i2[np.isin(a.loc[i2, "T"].round(10), common)]
        j1 = j1[np.argsort(a.loc[j1, "T"].to_numpy())]
        j2 = j2[np.argsort(a.loc[j2, "T"].to_numpy())]
        T = np.sort(common)
        u1, u2 = a.loc[j1, "binder"].to_numpy(), a.loc[j2, "binder"].to_numpy()
        e1, e2 = (np.std(replicas[:, j], axis=0, ddof=1) for j in (j1, j2))
        tc = binder_crossing(T, u1, u2, e1, e2)
        boot = np.array([binder_crossing(T, replicas[r, j1], replicas[r, j2], e1, e2)
                         for r in range(replicas.shape[0])])
        valid = boot[np.isfinite(boot)]
        u_cross = float(np.interp(tc, T, u2)) if np.isfinite(tc) else float("nan")
        rows.append({"L_small": int(L1), "L_large": int(L2), "T_cross": tc,
                     "T_cross_err": float(np.std(valid, ddof=1)) if valid.size > 1 else float("nan"),
                     "U_cross": u_cross, "n_boot_valid": int(valid.size), "exact_Tc": exact.TC})
    return pd.DataFrame(rows)


#: Below this overlap of the runs at a bracket's ends, reweighting across it is not trusted.
MIN_OVERLAP = 0.05


def _reweighted_root(mh1, mh2, lo, hi, around=()):
    """Root of U4_2 - U4_1 in [lo, hi]; if the reweighted curves cross just outside it (a run
    placed at the crossing makes a bracket end nearly a root), the + to - sign change between
    the ``around`` temperatures nearest the bracket."""
    def diff(t):
        return mh2.observables(t)["binder"][0] - mh1.observables(t)["binder"][0]
    d_lo, d_hi = diff(lo), diff(hi)
    if not (d_lo > 0 >= d_hi):
        pts = np.array(sorted(set(around) | {lo, hi}))
        d = np.array([d_lo if t == lo else d_hi if t == hi else diff(t) for t in pts])
        change = np.flatnonzero((d[:-1] > 0) & (d[1:] <= 0))
        if change.size == 0:
            return float("nan")
        j = change[np.argmin(np.abs(pts[change] + pts[change + 1] - lo - hi))]
        lo, hi = pts[j], pts[j + 1]
    return float(optimize.brentq(diff, lo, hi, xtol=1e-9))


def reweighting_reach(h: BlockedHistogram) -> float:
    """How far in T the energy histogram of run ``h`` reaches: T^2 / sigma_E = T / sqrt(N C),
    the shift that moves the mean energy by one standard deviation (Var E = N C T^2)."""
    c = float(reweight_single(h, h.T)["C"][0])
    return h.T / np.sqrt(max(c, 1e-12) * h.L**2)


def _near_bracket(T, i: int, n_neighbours: int, runs: dict, reach: float):
    """The temperatures combined for a crossing in [T_i, T_{i+1}]: ``n_neighbours`` grid points
    on each side, and every temperature within ``reach`` x the larger lattice's histogram reach of
    the bracket (so temperatures added near a crossing all count)."""
    lo, hi = T[i], T[i + 1]
    width = reach * max(reweighting_reach(runs[lo]), reweighting_reach(runs[hi]))
    near = (T >= lo - width) & (T <= hi + width)
    near[max(i - n_neighbours + 1, 0): i + n_neighbours + 1] = True
    return T[near]


def binder_crossings_reweighted(hists_by_L: dict[int, list[BlockedHistogram]],
                                rng: np.random.Generator, n_boot: int = 100,
                                n_neighbours: int = 2, reach: float = 1.5) -> pd.DataFrame:
    """Binder crossings of successive L on multiple-histogram reweighted U4(T) curves.

    The grid bracket [T_i, T_{i+1}] comes from :func:`binder_crossing` on the runs' own U4; each
    L's runs within ``n_neighbours`` grid points of the bracket, and all runs within ``reach``
    times the larger lattice's :func:`reweighting_reach` of it, are combined by the multiple
    histogram method and the root of U4_{L2}(T) - U4_{L1}(T) is found by Brent's method inside
    the bracket (no interpolation model at all). Errors: the same on every bootstrap replica
    (block resampling of every run, warm-started solves); replicas without a sign change in the
    bracket are dropped and counted.

    Parameters
    ----------
    hists_by_L : dict L -> runs of that L.
    rng : the caller's Generator.
    n_boot : bootstrap replicas.
    n_neighbours : grid points on each side of the bracket included in each histogram set.
    reach : also every run within this many histogram reaches of the bracket.

    Returns
    -------
    DataFrame: L_small, L_large, T_cross, T_cross_err, U_cross, n_boot_valid, n_runs, T_lo, T_hi
    (the bracket), bracket_overlap (the smaller :func:`~analysis.reweighting.histogram_overlap`
    of the two runs at its ends: below :data:`MIN_OVERLAP` the crossing rests on the histograms'
    tails and its bootstrap error means nothing; sample temperatures inside the bracket), exact_Tc.
    """
    rows = []
    sizes = sorted(hists_by_L)
    for L1, L2 in zip(sizes[:-1], sizes[1:]):
        h1 = {round(h.T, 10): h for h in hists_by_L[L1]}
        h2 = {round(h.T, 10): h for h in hists_by_L[L2]}
        T = np.array(sorted(set(h1) & set(h2)))
        if T.size < 2:
            continue
        u1 = np.array([reweight_single(h1[t], h1[t].T)["binder"][0] for t in T])
        u2 = np.array([reweight_single(h2[t], h2[t].T)["binder"][0] for t in T])
        grid = binder_crossing(T, u1, u2, [binder_error(h1[t]) for t in T], [binder_error(h2[t]) for t in T])
        if not np.isfinite(grid):
            continue
        i = int(np.searchsorted(T, grid, side="right") - 1)
        i = min(max(i, 0), T.size - 2)
        lo, hi = T[i], T[i + 1]
        pick = _near_bracket(T, i, n_neighbours, h2, reach)
        runs1, runs2 = [h1[t] for t in pick], [h2[t] for t in pick]
        mh1, mh2 = multi_histogram(runs1), multi_histogram(runs2)
        tc = _reweighted_root(mh1, mh2, lo, hi, pick)
        boot1 = bootstrap_replicas(runs1, n_boot, rng)
        boot2 = bootstrap_replicas(runs2, n_boot, rng)
        reps = np.array([_reweighted_root(multi_histogram(runs1, w1, mh1.lnZ),
                                          multi_histogram(runs2, w2, mh2.lnZ), lo, hi, pick)
                         for w1, w2 in zip(boot1, boot2)])
        valid = reps[np.isfinite(reps)]
        u_cross = float(mh2.observables(tc)["binder"][0]) if np.isfinite(tc) else float("nan")
        rows.append({"L_small": int(L1), "L_large": int(L2), "T_cross": tc,
                     "T_cross_err": float(np.std(valid, ddof=1)) if valid.size > 1 else float("nan"),
                     "U_cross": u_cross, "n_boot_valid": int(valid.size), "n_runs": int(pick.size),
                     "T_lo": float(lo), "T_hi": float(hi),
                     "bracket_overlap": min(histogram_overlap(h[lo], h[hi]) for h in (h1, h2)),
                     "exact_Tc": exact.TC})
    return pd.DataFrame(rows)


def _single_peak(h: BlockedHistogram, observable: str, window: float, weights=None):
    sigma_E = np.sqrt(reweight_single(h, h.T)["C"][0] * h.L**2) * h.T  # Var(E) = N C T^2
    d_beta = window / max(sigma_E, 1e-12)
    lo, hi = 1.0 / (1.0 / h.T + d_beta), 1.0 / max(1.0 / h.T - d_beta, 1e-12)
    return find_peak(lambda t: reweight_single(h, t, weights)[observable], lo, hi)


def reweighted_peaks(hists: list[BlockedHistogram], rng: np.random.Generator,
                     observables=("C", "chi"), n_boot: int = 100, n_neighbours: int = 3,
                     window: float = 1.5) -> pd.DataFrame:
    """Peak positions and heights of C and chi of one L by histogram reweighting.

    Single histogram: the run with the largest value on the grid is reweighted within
    ``|beta - beta_0| <= window / sigma_E`` (sigma_E its energy spread). Multiple histogram:
    the runs within ``n_neighbours`` grid points of that run are combined (beyond that their
    histograms no longer overlap at large L) and the peak is searched between their extreme
    temperatures. ``at_edge`` flags a maximum on the search boundary (the true peak may be
    outside: sample more temperatures there).

    Parameters
    ----------
    hists : runs of one L.
    rng : the caller's Generator (bootstrap).
    observables : subset of ("C", "chi").
    n_boot : bootstrap replicas.
    n_neighbours : grid neighbours on each side included in the multiple histogram.
    window : single-histogram half-width in units of 1/sigma_E.

    Returns
    -------
    DataFrame: L, observable, method, T_peak, T_peak_err, height, height_err, at_edge,
    T_grid_max, n_runs, exact_T_peak, exact_height (Kaufman, for C only), min_overlap (the
    smallest :func:`~analysis.reweighting.histogram_overlap` of neighbouring runs used; multi only).
    """
    hists = sorted(hists, key=lambda h: h.T)
    L = hists[0].L
    exact_peak = exact.kaufman_c_peak(L) if L >= 2 else (np.nan, np.nan)
    rows = []
    direct = {k: np.array([reweight_single(h, h.T)[k][0] for h in hists]) for k in observables}
    for obs in observables:
        i = int(np.nanargmax(direct[obs]))
        chosen = hists[max(i - n_neighbours, 0): i + n_neighbours + 1]
        boot = bootstrap_replicas(chosen, n_boot, rng)
        k = chosen.index(hists[i])
        ex = exact_peak if obs == "C" else (np.nan, np.nan)
        base = {"L": L, "observable": obs, "T_grid_max": hists[i].T,
                "exact_T_peak": ex[0], "exact_height": ex[1]}
        # single histogram
        t0, y0, edge = _single_peak(hists[i], obs, window)
        reps = np.array([_single_peak(hists[i], obs, window, w[k])[:2] for w in boot])
        rows.append({**base, "method": "single", "T_peak": t0, "height": y0, "at_edge": edge,
                     "T_peak_err": float(np.std(reps[:, 0], ddof=1)),
                     "height_err": float(np.std(reps[:, 1], ddof=1)), "n_runs": 1})
        if len(chosen) < 2:
            continue
        mh = multi_histogram(chosen)
        lo, hi = chosen[0].T, chosen[-1].T
        t0, y0, edge = find_peak(lambda t: mh.observables(t)[obs], lo, hi)
        reps = []
        for w in boot:
            rep = multi_histogram(chosen, w, lnZ_init=mh.lnZ)
            reps.append(find_peak(lambda t: rep.observables(t)[obs], lo, hi)[:2])
        reps = np.array(reps)
        overlap = min(histogram_overlap(a, b) for a, b in zip(chosen[:-1], chosen[1:]))
        rows.append({**base, "method": "multi", "T_peak": t0, "height": y0, "at_edge": edge,
                     "T_peak_err": float(np.std(reps[:, 0], ddof=1)),
                     "height_err": float(np.std(reps[:, 1], ddof=1)), "n_runs": len(chosen),
                     "min_overlap": overlap})
    return pd.DataFrame(rows)


def _fit_summary(res_chi2, dof):
    return {"chi2": float(res_chi2), "dof": int(dof),
            "p_value": float(stats.chi2.sf(res_chi2, dof)) if dof > 0 else float("nan")}


def fit_peak_shift(L, T_peak, T_err, nu: float | None = None) -> dict:
    """Weighted fit of T_peak(L) = Tc + a L^{-1/nu}.

    Parameters
    ----------
    L, T_peak, T_err : array_like, shape (n_L,); T_err > 0.
    nu : float or None. None fits nu too (needs >= 4 sizes); a number fixes it (e.g. the
        exact nu = 1 when only 3 sizes are available).

    Returns
    -------
    dict: Tc, Tc_err, a, a_err, nu, nu_err (0 if fixed), chi2, dof, p_value, nu_fixed.
    Errors from the covariance with absolute sigma (scaled by nothing: chi2/dof reports the fit).
    """
    L = np.asarray(L, dtype=np.float64)
    y = np.asarray(T_peak, dtype=np.float64)
    s = np.asarray(T_err, dtype=np.float64)
    fixed = nu is not None
    if L.size < (3 if fixed else 4):
        raise ValueError(f"need at least {3 if fixed else 4} lattice sizes, got {L.size}")
    a0 = (y[0] - y[-1]) / (L[0] ** -1.0 - L[-1] ** -1.0)
    tc0 = y[-1] - a0 * L[-1] ** -1.0
    if fixed:
        def model(x, tc, a):
            return tc + a * x ** (-1.0 / nu)
        p, cov = optimize.curve_fit(model, L, y, p0=[tc0, a0], sigma=s, absolute_sigma=True)
        resid = (y - model(L, *p)) / s
        out = {"Tc": p[0], "a": p[1], "nu": float(nu), "nu_err": 0.0, "nu_fixed": True}
    else:
        def model(x, tc, a, v):
            return tc + a * x ** (-1.0 / v)
        p, cov = optimize.curve_fit(model, L, y, p0=[tc0, a0, 1.0], sigma=s, absolute_sigma=True,
                                    bounds=([-np.inf, -np.inf, 0.2], [np.inf, np.inf, 5.0]))
        resid = (y - model(L, *p)) / s
        out = {"Tc": p[0], "a": p[1], "nu": p[2], "nu_err": float(np.sqrt(cov[2, 2])), "nu_fixed": False}
    out.update({"Tc_err": float(np.sqrt(cov[0, 0])), "a_err": float(np.sqrt(cov[1, 1]))})
    out.update(_fit_summary(np.sum(resid**2), L.size - p.size))
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def fit_power_law(L, y, y_err, background: bool = False) -> dict:
    """Weighted fit of y = A L^p (+ B, the analytic background, if ``background``).

    Without background: a straight line in log-log (sigma_log = y_err / y), exact least squares.
    With background: nonlinear least squares in y (needs >= 4 sizes for a chi2 with dof >= 1);
    the constant B absorbs the leading correction to scaling of the 2D Ising susceptibility.

    Parameters
    ----------
    L, y, y_err : array_like, shape (n_L,), y > 0, y_err > 0, n_L >= 2 (3 with background).
    background : bool

    Returns
    -------
    dict: exponent, exponent_err, amplitude, amplitude_err, background, background_err, chi2,
    dof, p_value.
    """
    L = np.asarray(L, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    err = np.asarray(y_err, dtype=np.float64)
    if L.size < (3 if background else 2):
        raise ValueError(f"need at least {3 if background else 2} lattice sizes, got {L.size}")
    s = err / y
    X = np.stack([np.ones_like(L), np.log(L)], axis=1)
    Wt = 1.0 / s**2
    cov = np.linalg.inv(X.T @ (X * Wt[:, None]))
    coef = cov @ (X.T @ (Wt * np.log(y)))
    out = {"exponent": coef[1], "exponent_err": np.sqrt(cov[1, 1]), "amplitude": np.exp(coef[0]),
           "amplitude_err": np.exp(coef[0]) * np.sqrt(cov[0, 0]), "background": 0.0, "background_err": 0.0}
    resid = (np.log(y) - X @ coef) / s
    if background:
        def model(x, a, p, b):
            return a * x**p + b
        par, pcov = optimize.curve_fit(model, L, y, p0=[out["amplitude"], out["exponent"], 0.0],
                                       sigma=err, absolute_sigma=True, maxfev=20000)
        out = {"amplitude": par[0], "exponent": par[1], "background": par[2],
               "amplitude_err": np.sqrt(pcov[0, 0]), "exponent_err": np.sqrt(pcov[1, 1]),
               "background_err": np.sqrt(pcov[2, 2])}
        resid = (y - model(L, *par)) / err
    out = {k: float(v) for k, v in out.items()}
    out.update(_fit_summary(np.sum(resid**2), L.size - (3 if background else 2)))
    return out
