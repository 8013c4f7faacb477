"""``rgsweep report OUT``: the phase-transition report of a dataset, from the Parquet files only.

:func:`build_report` writes ``OUT/report/index.html`` (opens offline; PNG figures beside it),
``OUT/report/summary.md`` (the estimate tables) and ``OUT/report/estimates.csv``. Every section
is computed independently: a missing table or a section that cannot be computed (too few sizes,
temperatures or measurements) is listed under "Missing" with the reason, and the rest of the
report is still written. It never raises because of the dataset's contents.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import exact_reference as exact
from . import figures
from .load import Dataset
from .report_page import ReportPage, write_page
from .report_rbm import flow_section, rbm_section
from .report_refine import refine_section
from .resampling import BLOCK_TAUS, MIN_BLOCKS
from .reweighting import multi_histogram
from .thermodynamics import (bootstrap_observables, free_energy_integration, load_histograms,
                             thermodynamics_table)
from .transition import (MIN_OVERLAP, binder_crossings, binder_crossings_reweighted, fit_peak_shift,
                         fit_power_law, reweighted_peaks)

__all__ = ["build_report", "report_dir"]


def _algorithm_counts(used: pd.Series) -> str:
    """"multispin 23, wolff 2": the samplers "auto" picked for one L, with their task counts."""
    return ", ".join(f"{name} {n}" for name, n in sorted(used.value_counts().items()))


def report_dir(out) -> Path:
    """Where the report of ``out`` goes: ``OUT/report``; for a URI, ``./report-<name>``."""
    out = str(out)
    if "://" in out:
        return Path.cwd() / f"report-{out.rstrip('/').rsplit('/', 1)[-1]}"
    return Path(out) / "report"


def _dataset_section(out, rep: ReportPage, ising, failures):
    items = rep.section("Dataset")
    try:
        sweep = Dataset(str(out)).sweep  # works on s3:// too
        spec = sweep.get("spec", sweep).get("sweep", {})
        items.append(("text", f"sweep `{spec.get('name', '?')}`, lattice sizes {spec.get('lattice_sizes', '?')}"))
    except Exception as err:
        rep.missing.append(f"sweep.json: {type(err).__name__}: {err}")
    if not ising.empty:
        counts = ising.groupby("L").agg(n_T=("T", "nunique"), T_min=("T", "min"), T_max=("T", "max"),
                                        algorithm=("algorithm_used", _algorithm_counts),
                                        wall_s=("wall_s", "sum")).reset_index()
        items.append(("table", "Sampling tasks done per L", counts))
    training = rep.read(out, "rbm", quiet=True, columns=["task_id", "wall_s"])  # the RBM section reports it
    for name, frame in (("sampling", ising), ("training", training)):
        if not frame.empty and "wall_s" in frame.columns:
            items.append(("text", f"{name}: {len(frame)} tasks, {frame['wall_s'].sum():.1f} s of task "
                                  "wall time in total (summed over tasks, not elapsed)"))
    if not failures.empty:
        items.append(("table", "Failed task attempts", failures[["task_id", "L", "T", "kind", "error", "attempt"]]))


def _thermo_section(rep: ReportPage, ising):
    items = rep.section("Thermodynamics against Kaufman's exact finite-L values")
    thermo = thermodynamics_table(ising)
    rep.figure(items, "thermodynamics.png", figures.thermodynamics_figure, thermo)
    cols = [c for c in ("L", "T", "e", "e_err", "exact_u", "z_e", "C", "C_err", "exact_c", "z_C",
                        "chi", "chi_err", "binder", "binder_err", "tau_int_e") if c in thermo.columns]
    items.append(("table", "Per (L, T); z = (measured - exact) / error", thermo[cols]))
    if "z_e" in thermo:
        z = thermo[["z_e", "z_C"]].to_numpy().ravel()
        z = z[np.isfinite(z)]
        items.append(("text", f"{np.mean(np.abs(z) < 2):.0%} of {z.size} z-scores within 2 "
                              f"(95% expected for honest error bars); max |z| = {np.max(np.abs(z)):.2f}"))


def _transition_section(out, rep: ReportPage, rng, n_boot):
    items = rep.section("Phase transition")
    hists = load_histograms(out)
    if not hists:
        rep.missing.append("phase transition: no `series` table (Binder crossings, reweighted peaks)")
        return
    runs = [h for L in sorted(hists) for h in hists[L]]
    table, reps = bootstrap_observables(runs, n_boot, rng)
    short = table[table["short_blocks"]]
    if not short.empty:
        items.append(("text", f"{len(short)} runs are shorter than {BLOCK_TAUS} tau_int per block x "
                              f"{MIN_BLOCKS} blocks: their blocks are shorter and their bootstrap errors "
                              "somewhat underestimated."))
    if len(hists) >= 2:
        grid = binder_crossings(table, reps["binder"]).assign(method="grid, quadratic interpolation")
        rew = rep.guard("Binder crossings (reweighted)", binder_crossings_reweighted, hists, rng, n_boot)
        crossings = pd.concat([grid] + ([rew.assign(method="multiple-histogram reweighting")]
                                        if rew is not None and not rew.empty else []), ignore_index=True)
        items.append(("table", "Binder-cumulant crossings of successive L (bootstrap over blocks)", crossings))
        # reweighting across a bracket whose runs' histograms do not overlap is not trusted
        reweighted = rew is not None and not rew.empty
        trusted = rew[rew["bracket_overlap"] >= MIN_OVERLAP].dropna(subset=["T_cross"]) if reweighted else rew
        best = grid.dropna(subset=["T_cross"])
        if reweighted and not trusted.empty and (best.empty or trusted.iloc[-1]["L_large"] >= best.iloc[-1]["L_large"]):
            best, method = trusted, "multiple-histogram reweighting"
        else:
            method = "grid, quadratic interpolation" + (" (reweighting: the bracket's histograms do not overlap)"
                                                        if reweighted else "")
        if not best.empty:
            last = best.iloc[-1]
            rep.estimate(f"Tc, Binder crossing L={int(last['L_small'])}/{int(last['L_large'])}",
                         last["T_cross"], last["T_cross_err"], exact.TC, method)
        rep.figure(items, "binder.png", figures.binder_figure, table,
                   rew if rew is not None and not rew.empty else grid)
    else:
        rep.missing.append("Binder crossings: need at least 2 lattice sizes")
    peaks = []
    for L in sorted(hists):
        if len(hists[L]) < 3:
            rep.missing.append(f"reweighted peaks L={L}: need at least 3 temperatures, have {len(hists[L])}")
            continue
        p = rep.guard(f"reweighted peaks L={L}", reweighted_peaks, hists[L], rng, ("C", "chi"), n_boot)
        if p is not None:
            peaks.append(p)
    if not peaks:
        return
    peaks = pd.concat(peaks, ignore_index=True)
    items.append(("table", "C and chi peaks by histogram reweighting (exact: Kaufman's c peak)", peaks))
    for _, row in peaks[(peaks["observable"] == "C") & (peaks["method"] == "multi")].iterrows():
        rep.estimate(f"C peak position L={row['L']}", row["T_peak"], row["T_peak_err"], row["exact_T_peak"],
                     "multiple histogram")
    rep.figure(items, "peaks.png", figures.peaks_figure, _peak_curves(hists, table, peaks), peaks)
    _fss(rep, items, peaks)


def _peak_curves(hists, table, peaks):
    curves = {}
    for (L, obs), p in peaks[peaks["method"] == "multi"].groupby(["L", "observable"]):
        runs = hists[L]
        i = int(np.argmin([abs(h.T - p["T_grid_max"].iloc[0]) for h in runs]))
        chosen = runs[max(i - 3, 0): i + 4]
        mh = multi_histogram(chosen)
        t = np.linspace(chosen[0].T, chosen[-1].T, 120)
        g = table[table["L"] == L].sort_values("T")
        curves[(L, obs)] = (t, mh.observables(t)[obs], g["T"], g[obs], g[f"{obs}_err"])
    return curves


def _fss(rep, items, peaks):
    multi = peaks[(peaks["method"] == "multi") & ~peaks["at_edge"]]
    fits, rows = {}, []
    sizes = sorted(multi["L"].unique())
    # corrections to scaling are largest at small L: when there are sizes to spare, fit again
    # without the smallest one, so a drift of the estimate with L_min is visible
    subsets = [sizes] + ([sizes[1:]] if len(sizes) >= 4 else [])
    for obs in ("C", "chi"):
        for sub in subsets:
            p = multi[(multi["observable"] == obs) & multi["L"].isin(sub)].sort_values("L")
            tag = f"L >= {min(sub)}"
            if len(p) < 3:
                rep.missing.append(f"finite-size fit of the {obs} peak: need 3 sizes with an interior "
                                   f"peak, have {len(p)}")
                continue
            fit = rep.guard(f"finite-size fit {obs}, nu = 1", fit_peak_shift, p["L"], p["T_peak"],
                         p["T_peak_err"], 1.0)
            if fit:
                fits.setdefault(f"T_{obs}", fit)
                rows.append({"fit": f"T_{obs}(L) = Tc + a L^-1 (nu fixed = 1), {tag}", **fit})
                rep.estimate(f"Tc, fit of T_{obs}(L), nu = 1, {tag}", fit["Tc"], fit["Tc_err"], exact.TC,
                             "finite-size fit")
            if len(p) >= 4:
                free = rep.guard(f"finite-size fit {obs}, free nu", fit_peak_shift, p["L"], p["T_peak"],
                              p["T_peak_err"])
                if free:
                    rows.append({"fit": f"T_{obs}(L) = Tc + a L^(-1/nu), {tag}", **free})
                    rep.estimate(f"Tc, fit of T_{obs}(L), free nu, {tag}", free["Tc"], free["Tc_err"],
                                 exact.TC, "finite-size fit")
                    rep.estimate(f"nu, fit of T_{obs}(L), {tag}", free["nu"], free["nu_err"], exact.NU,
                                 "finite-size fit")
    p = multi[multi["observable"] == "chi"].sort_values("L")
    for sub in subsets:
        q = p[p["L"].isin(sub)]
        if len(q) < 2:
            continue
        fit = rep.guard("chi_max power law", fit_power_law, q["L"], q["height"], q["height_err"])
        if fit:
            fits.setdefault("chi_max", fit)
            rows.append({"fit": f"chi_max = A L^(gamma/nu), L >= {min(sub)}", **fit})
            if len(q) >= 3:  # a headline estimate has >= 1 degree of freedom (2 points: table only)
                rep.estimate(f"gamma/nu, chi_max ~ L^(gamma/nu), L >= {min(sub)}", fit["exponent"],
                             fit["exponent_err"], exact.GAMMA_OVER_NU, "finite-size fit, no correction term")
    if len(p) >= 4:
        fit = rep.guard("chi_max power law with background", fit_power_law, p["L"], p["height"],
                     p["height_err"], True)
        if fit:
            rows.append({"fit": f"chi_max = A L^(gamma/nu) + B, L >= {p['L'].min()}", **fit})
            rep.estimate(f"gamma/nu, chi_max ~ A L^(gamma/nu) + B, L >= {p['L'].min()}", fit["exponent"],
                         fit["exponent_err"], exact.GAMMA_OVER_NU, "finite-size fit with background")
    for a, b in zip(p.iloc[:-1].itertuples(), p.iloc[1:].itertuples()):
        local = fit_power_law([a.L, b.L], [a.height, b.height], [a.height_err, b.height_err])
        rows.append({"fit": f"local gamma/nu from L = {a.L}, {b.L}", **local})
    if rows:
        items.append(("table", "Finite-size fits (weighted; errors from the covariance; p_value of chi2)",
                      pd.DataFrame(rows)))
        rep.figure(items, "finite_size.png", figures.finite_size_figure, peaks, fits)


def _free_energy_section(rep, ising):
    items = rep.section("Free energy by thermodynamic integration")
    fe = free_energy_integration(ising[ising.groupby("L")["T"].transform("count") >= 2])
    if fe.empty:
        rep.missing.append("free energy: need at least 2 temperatures per L")
        return
    items.append(("text", "beta f integrated from the highest sampled T (anchored to Kaufman's exact f "
                          "there); the dashed curves integrate the exact u on the same grid, so their "
                          "distance from zero is the quadrature error alone."))
    items.append(("table", "f per spin", fe))
    rep.figure(items, "free_energy.png", figures.free_energy_figure, fe)


#: Figures never depend on global matplotlib settings another library changed (one peer
#: package turns on ``text.usetex`` at import, which fails without a LaTeX install).
_RC = {"text.usetex": False}


def build_report(out, n_boot: int = 100, seed: int = 0, formats=("png",)) -> Path:
    """Write the phase-transition report of the dataset at ``out``; return ``index.html``'s path
    (see :func:`_build_report`). ``formats``: png (always written: the page shows it), svg, pdf."""
    import matplotlib

    from .figure_output import figure_formats

    with matplotlib.rc_context(_RC), figure_formats(formats):
        return _build_report(out, n_boot, seed)


def _build_report(out, n_boot: int = 100, seed: int = 0) -> Path:
    """Write the phase-transition report of the dataset at ``out``; return ``index.html``'s path.

    Parameters
    ----------
    out : dataset folder (or URI; the report then goes to ``./report-<name>``).
    n_boot : bootstrap replicas for every error bar.
    seed : seed of the one Generator behind every bootstrap (a report is reproducible).

    Returns
    -------
    Path of ``index.html``; ``summary.md``, ``estimates.csv`` and the PNGs are beside it.
    """
    t0 = time.perf_counter()
    directory = report_dir(out)
    if "://" not in str(out) and os.path.lexists(out):  # never act through a link out of OUT
        root = os.path.realpath(out)
        probe = directory
        while not os.path.lexists(probe) and probe != probe.parent:
            probe = probe.parent
        real = os.path.realpath(probe)
        if real != root and not real.startswith(root + os.sep):
            raise ValueError(f"{directory} leads outside {out} (to {real}); remove that link")
    directory.mkdir(parents=True, exist_ok=True)
    for old in [p for ext in ("png", "svg", "pdf") for p in directory.glob(f"*.{ext}")]:
        old.unlink()  # a rebuilt report must not link stale figures (a link is removed, not its target)
    rep = ReportPage(directory)
    rng = np.random.default_rng(seed)
    ising = rep.read(out, "ising")
    failures = rep.read(out, "failures", quiet=True)  # unreadable: the report only loses that list
    _dataset_section(out, rep, ising, failures)
    if not ising.empty:
        rep.guard("thermodynamics", _thermo_section, rep, ising)
        rep.guard("free energy", _free_energy_section, rep, ising)
    rep.guard("phase transition", _transition_section, out, rep, rng, n_boot)
    rep.guard("adaptive refinement", refine_section, out, rep)
    rep.guard("RBM signatures", rbm_section, out, rep, rng, n_boot)
    rep.guard("RG flows", flow_section, out, rep, rng, n_boot, ising)
    return write_page(rep, out, time.perf_counter() - t0)
