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
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import exact_reference as exact
from . import figures, rbm_figures
from .flow import (blockspin_fixed_points, flow_steps, flow_summary, projected_fields, rbmflow_endpoints,
                   stacked_growth)
from .load import Dataset, read_table
from .rbm_signatures import (final_checkpoint, hidden_units_table, signature_features,
                             signature_table, training_stage, transport_speed)
from .report_page import ReportPage, write_page
from .resampling import BLOCK_TAUS, MIN_BLOCKS
from .reweighting import multi_histogram
from .thermodynamics import (bootstrap_observables, free_energy_integration, load_histograms,
                             thermodynamics_table)
from .transition import (binder_crossings, binder_crossings_reweighted, fit_peak_shift,
                         fit_power_law, reweighted_peaks)

__all__ = ["build_report", "report_dir"]

_RBM_TABLES = ("rbm", "free_energy", "spectra", "rg_alignment", "transport", "rbm_params")


def report_dir(out) -> Path:
    """Where the report of ``out`` goes: ``OUT/report``; for a URI, ``./report-<name>``."""
    out = str(out)
    if "://" in out:
        return Path.cwd() / f"report-{out.rstrip('/').rsplit('/', 1)[-1]}"
    return Path(out) / "report"


def _read(out, name, rep: ReportPage, keep=None, empty="no rows", quiet=False, **kw) -> pd.DataFrame:
    """Table ``name`` (through ``keep``, if given), or an empty frame if it cannot be read.

    An unreadable table, or one ``empty`` of rows, is listed as missing unless ``quiet``.
    """
    try:
        frame = read_table(out, name, verify="size", **kw)
        if keep is not None:
            frame = keep(frame)
    except Exception as err:
        if not quiet:
            rep.missing.append(f"table `{name}` unreadable: {type(err).__name__}: {err}")
        return pd.DataFrame()
    if frame.empty and not quiet:
        rep.missing.append(f"table `{name}`: {empty}")
    return frame


def _guard(rep: ReportPage, what: str, fn, *args):
    try:
        return fn(*args)
    except Exception as err:
        rep.missing.append(f"{what}: {type(err).__name__}: {err}")
        rep.traces.append(traceback.format_exc())
        return None


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
                                        algorithm=("algorithm_used", "first"),
                                        wall_s=("wall_s", "sum")).reset_index()
        items.append(("table", "Sampling tasks done per L", counts))
    training = _read(out, "rbm", rep, quiet=True, columns=["task_id", "wall_s"])  # the RBM section reports it
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
        rew = _guard(rep, "Binder crossings (reweighted)", binder_crossings_reweighted, hists, rng, n_boot)
        crossings = pd.concat([grid] + ([rew.assign(method="multiple-histogram reweighting")]
                                        if rew is not None and not rew.empty else []), ignore_index=True)
        items.append(("table", "Binder-cumulant crossings of successive L (bootstrap over blocks)", crossings))
        reweighted = rew is not None and not rew.empty
        best = (rew if reweighted else grid).dropna(subset=["T_cross"])
        if not best.empty:
            last = best.iloc[-1]
            rep.estimate(f"Tc, Binder crossing L={int(last['L_small'])}/{int(last['L_large'])}",
                         last["T_cross"], last["T_cross_err"], exact.TC,
                         "multiple-histogram reweighting" if reweighted else "grid, quadratic interpolation")
        rep.figure(items, "binder.png", figures.binder_figure, table,
                   rew if rew is not None and not rew.empty else grid)
    else:
        rep.missing.append("Binder crossings: need at least 2 lattice sizes")
    peaks = []
    for L in sorted(hists):
        if len(hists[L]) < 3:
            rep.missing.append(f"reweighted peaks L={L}: need at least 3 temperatures, have {len(hists[L])}")
            continue
        p = _guard(rep, f"reweighted peaks L={L}", reweighted_peaks, hists[L], rng, ("C", "chi"), n_boot)
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
            fit = _guard(rep, f"finite-size fit {obs}, nu = 1", fit_peak_shift, p["L"], p["T_peak"],
                         p["T_peak_err"], 1.0)
            if fit:
                fits.setdefault(f"T_{obs}", fit)
                rows.append({"fit": f"T_{obs}(L) = Tc + a L^-1 (nu fixed = 1), {tag}", **fit})
                rep.estimate(f"Tc, fit of T_{obs}(L), nu = 1, {tag}", fit["Tc"], fit["Tc_err"], exact.TC,
                             "finite-size fit")
            if len(p) >= 4:
                free = _guard(rep, f"finite-size fit {obs}, free nu", fit_peak_shift, p["L"], p["T_peak"],
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
        fit = _guard(rep, "chi_max power law", fit_power_law, q["L"], q["height"], q["height_err"])
        if fit:
            fits.setdefault("chi_max", fit)
            rows.append({"fit": f"chi_max = A L^(gamma/nu), L >= {min(sub)}", **fit})
            rep.estimate(f"gamma/nu, chi_max ~ L^(gamma/nu), L >= {min(sub)}", fit["exponent"],
                         fit["exponent_err"], exact.GAMMA_OVER_NU, "finite-size fit, no correction term")
    if len(p) >= 4:
        fit = _guard(rep, "chi_max power law with background", fit_power_law, p["L"], p["height"],
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


def _rbm_section(out, rep, rng, n_boot):
    items = rep.section("RBM signatures against T")
    rbm = _read(out, "rbm", rep)
    # the flow task writes its stacked layers to the same tables: only the training stage's
    # RBMs (task ids of the `rbm` table, layer 1) belong here
    ids = pa.array(sorted(rbm["task_id"].unique()) if "task_id" in rbm.columns else [], type=pa.string())
    only = pc.field("task_id").isin(ids)
    stage = "no rows of the training stage (RBMs of the `rbm` table, layer 1)"
    tables = {"rbm": rbm, **{name: _read(out, name, rep, keep=lambda f: training_stage(f, rbm),
                                         empty=stage, filters=only)
                            for name in _RBM_TABLES if name not in ("rbm", "rbm_params")}}
    if all(t.empty for t in tables.values()):
        return
    speed, fields = _final_weights(out, rep, tables["rbm"])
    sig = signature_table({**tables, "transport_speed": speed})
    if sig.empty:
        rep.missing.append("RBM signatures: nothing to compute")
        return
    seeds = int(sig["n_seeds"].max()) if "n_seeds" in sig.columns and len(sig) else 1
    spread = (f"mean and standard error over {seeds} RBM seeds" if seeds > 1 else
              "one RBM seed: error bars are the measurements' own (KL: tau_int-aware with the ln Z "
              "error; fits: jackknife; alignment: over hidden units)")
    have = set(sig["signature"])
    items.append(("text", "Every curve is the final checkpoint, " + spread + ". Dashed lines "
                  "in the same colour are the null: what a model that knows nothing gives (the same "
                  "RBM at epoch 0, its random initialisation; for block alignment the same weights "
                  "with the lattice sites permuted)."))
    rbm_rows = tables["rbm"]
    if not rbm_rows.empty and {"e", "mc_e"} <= set(rbm_rows.columns):
        rep.figure(items, "rbm_physics.png", rbm_figures.rbm_physics_figure, rbm_rows)
        items.append(("text", "Figure: energy, |magnetisation|, heat capacity and susceptibility of "
                      "configurations the trained RBMs generate (filled), over Monte Carlo on the "
                      "samples they were trained on (open) and Kaufman's exact values (lines)."))
    hidden = _guard(rep, "hidden units needed", hidden_units_table, rbm_rows)
    if hidden is not None and not hidden.empty:
        rep.figure(items, "rbm_hidden_units.png", rbm_figures.hidden_units_figure, hidden)
        items.append(("text", "Figure: how many hidden units the physics needs (Torlai & Melko "
                      "2016): |RBM/MC - 1| of e and C against n_h, one line per temperature; the "
                      "dotted line is n_h = N."))
        items.append(("table", "RBM / MC - 1 against the number of hidden units", hidden))
    for name, caption, names in (
            ("rbm_kl_fidelity.png", "KL per spin and the effective-Hamiltonian fit of F(v) to "
             "beta H(v), raw and beyond the magnetisation (after removing a polynomial in m from "
             "both): in the ordered phase F tracks m and so does beta H, so only the fit beyond m "
             "says whether F has learned the couplings.",
             ["kl_per_spin", "heff_r2", "heff_partial_r2", "heff_slope", "heff_partial_slope",
              "nll_test"]),
            ("rbm_spectrum.png", "The Wishart spectrum of W W^T against the Marchenko-Pastur law "
             "fitted to its own bulk: eigenvalues above its upper edge and the KS distance of the "
             "rest; the largest eigenvalue and the effective rank.",
             ["n_outliers", "mp_ks", "lambda_max", "effective_rank", "bw_speed"]),
            ("rbm_alignment.png", "Block alignment (the share of a unit's weight in its best b x b "
             "block) beside the same weights with the sites permuted, the excess over that null, "
             "and the excess of |corr| between p(h|v) and the block's mean spin over its null.",
             sorted(s for s in have if s.startswith(("alignment_", "corr_excess_")))),
            ("rbm_vs_mc.png", "RBM-generated observables relative to Monte Carlo on the same "
             "samples (0: reproduced).", ["rel_e", "rel_m_abs", "rel_C", "rel_chi"])):
        names = [n for n in names if n in have]
        if names:
            rep.figure(items, name, rbm_figures.signature_null_figure, sig, names)
            items.append(("text", "Figure: " + caption))
    if not tables["spectra"].empty:
        rep.figure(items, "spectra.png", figures.spectra_figure, tables["spectra"], tables["rbm"])
    if not fields.empty:
        rep.figure(items, "receptive_fields.png", figures.receptive_fields_figure, fields)
    feats = _guard(rep, "RBM signature features", signature_features, sig, rng, n_boot)
    if feats is not None and not feats.empty:
        items.append(("table", "Where each signature peaks or changes fastest, relative to Tc", feats))
    items.append(("table", "Signature curves (final checkpoint), with their nulls", sig))


def _final_weights(out, rep, rbm):
    """Bures-Wasserstein speeds and the largest L's final weights, reading W one L at a time.

    ``rbm_params`` holds N x n_hidden floats per checkpoint (4M at L = 64, n_h = N/4), so it is
    never loaded whole: only final checkpoints, one lattice size at a time.
    """
    speeds, fields = [], pd.DataFrame()
    if rbm.empty or "epochs" not in rbm.columns:
        rep.missing.append("RBM weights: no `rbm` rows to find the final checkpoints")
        return pd.DataFrame(), fields
    epochs = sorted({int(e) for e in rbm["epochs"]})
    for L in sorted(rbm["L"].unique()):
        params = training_stage(read_table(out, "rbm_params", filters=[
            ("L", "=", int(L)), ("epoch", "in", epochs), ("task_id", "in", sorted(set(rbm["task_id"])))]), rbm)
        if params.empty:
            rep.missing.append(f"table `rbm_params`: no final checkpoint for L={L}")
            continue
        speeds.append(transport_speed(params))
        if L == rbm["L"].max():
            fields = final_checkpoint(params)
            fields = fields[fields["n_hidden"] == fields["n_hidden"].max()]
    speeds = [s for s in speeds if not s.empty]
    return (pd.concat(speeds, ignore_index=True) if speeds else pd.DataFrame()), fields


def _flow_section(out, rep, rng, n_boot, ising):
    try:
        flow = read_table(out, "rg_flow")
    except Exception as err:
        rep.missing.append(f"RG flows: table `rg_flow` unreadable: {type(err).__name__}: {err}")
        return
    if flow.empty:
        rep.missing.append("RG flows: no `rg_flow` table (the spec has no [rg_flow] stage)")
        return
    items = rep.section("RG flows")
    items.append(("text", "blockspin: b x b majority rule, T' read off the MC energy curve of the coarse size "
                          "(Tc is its unstable fixed point as L -> infinity; errors: parametric bootstrap over the "
                          "T' errors). rbmflow: v -> h -> v steps of one RBM trained on all T of L pooled, T_eff "
                          "from (e, |m|). stacked: greedy RBM stack, extent of the fields W1...Wk per layer."))
    steps = flow_steps(flow, ising)
    fixed = _guard(rep, "block-spin fixed points", blockspin_fixed_points, flow, rng, n_boot, ising)
    fixed = fixed if fixed is not None else blockspin_fixed_points(flow.iloc[:0], rng)
    ends, growth = rbmflow_endpoints(flow), stacked_growth(flow)
    items.append(("table", "Where the flows go, per L and kind (exact Tc = 2/ln(1+sqrt 2))",
                  flow_summary(fixed, ends, growth)))
    for r in fixed.itertuples():
        rep.estimate(f"Tc, block-spin fixed point L={r.L} -> {r.coarse_size}", r.T_star, r.T_star_err, exact.TC,
                     "majority rule, T' = T (linear interpolation; finite L)")
    for caption, frame in (("Block-spin fixed points per L and level", fixed),
                           ("RBM flow: where T_eff ends after the last step", ends),
                           ("Stacked RBMs: receptive-field extent per layer", growth)):
        if not frame.empty:
            items.append(("table", caption, frame))
    for L, g in flow.groupby("L", sort=True):
        rep.figure(items, f"rg_flow_L{L}.png", figures.flow_diagram_figure, g, steps[steps["L"] == L],
                   fixed[fixed["L"] == L])
        task = sorted(g["task_id"].unique())
        params = _guard(rep, f"stacked layers L={L}", read_table, out, "rbm_params",
                        [("L", "=", int(L)), ("task_id", "in", task)])
        fields = projected_fields(params) if params is not None and not params.empty else {}
        if fields:
            rep.figure(items, f"rg_flow_fields_L{L}.png", figures.flow_fields_figure, fields, int(L))
        elif "stacked" in set(g["kind"]):
            rep.missing.append(f"RG flows L={L}: no stacked-layer weights in `rbm_params`")


#: Figures never depend on global matplotlib settings another library changed (one peer
#: package turns on ``text.usetex`` at import, which fails without a LaTeX install).
_RC = {"text.usetex": False}


def build_report(out, n_boot: int = 100, seed: int = 0) -> Path:
    """Write the phase-transition report of the dataset at ``out``; return ``index.html``'s path
    (see :func:`_build_report`)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
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
    for old in directory.glob("*.png"):  # a rebuilt report must not reference stale figures
        old.unlink()  # (a link is removed, never what it points at)
    rep = ReportPage(directory)
    rng = np.random.default_rng(seed)
    ising = _read(out, "ising", rep)
    failures = _read(out, "failures", rep, quiet=True)  # unreadable: the report only loses that list
    _dataset_section(out, rep, ising, failures)
    if not ising.empty:
        _guard(rep, "thermodynamics", _thermo_section, rep, ising)
        _guard(rep, "free energy", _free_energy_section, rep, ising)
    _guard(rep, "phase transition", _transition_section, out, rep, rng, n_boot)
    _guard(rep, "RBM signatures", _rbm_section, out, rep, rng, n_boot)
    _guard(rep, "RG flows", _flow_section, out, rep, rng, n_boot, ising)
    return write_page(rep, out, time.perf_counter() - t0)
