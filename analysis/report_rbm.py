"""The report's RBM and RG-flow sections: signatures against T with their nulls, hidden units
needed, final receptive fields; block-spin fixed points, stacked layers and RBM flows."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import exact_reference as exact
from . import figures, rbm_figures
from .flow import (blockspin_fixed_points, flow_steps, flow_summary, projected_fields, rbmflow_endpoints,
                   stacked_growth)
from .load import read_table
from .rbm_signatures import (final_checkpoint, hidden_units_table, signature_features,
                             signature_table, training_stage, transport_speed)

__all__ = ["rbm_section", "flow_section", "ais_lower_bound_note"]

#: The tables of the training stage.
RBM_TABLES = ("rbm", "free_energy", "spectra", "rg_alignment", "transport", "rbm_params")


def rbm_section(out, rep, rng, n_boot):
    items = rep.section("RBM signatures against T")
    rbm = rep.read(out, "rbm")
    # the flow task writes its stacked layers to the same tables: only the training stage's
    # RBMs (task ids of the `rbm` table, layer 1) belong here
    ids = pa.array(sorted(rbm["task_id"].unique()) if "task_id" in rbm.columns else [], type=pa.string())
    only = pc.field("task_id").isin(ids)
    stage = "no rows of the training stage (RBMs of the `rbm` table, layer 1)"
    tables = {"rbm": rbm, **{name: rep.read(out, name, keep=lambda f: training_stage(f, rbm),
                                         empty=stage, filters=only)
                            for name in RBM_TABLES if name not in ("rbm", "rbm_params")}}
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
    bound = ais_lower_bound_note(tables["free_energy"])
    if bound:
        items.append(("text", bound))
    rbm_rows = tables["rbm"]
    if not rbm_rows.empty and {"e", "mc_e"} <= set(rbm_rows.columns):
        rep.figure(items, "rbm_physics.png", rbm_figures.rbm_physics_figure, rbm_rows,
                   caption="Energy, |magnetisation|, heat capacity and susceptibility of "
                   "configurations the trained RBMs generate (filled), over Monte Carlo on the "
                   "samples they were trained on (open) and Kaufman's exact values (lines).")
    hidden = rep.guard("hidden units needed", hidden_units_table, rbm_rows)
    if hidden is not None and not hidden.empty:
        rep.figure(items, "rbm_hidden_units.png", rbm_figures.hidden_units_figure, hidden,
                   caption="How many hidden units the physics needs (Torlai & Melko 2016): "
                   "|RBM/MC - 1| of e and C against n_h, one line per temperature; the dotted line "
                   "is n_h = N.")
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
            rep.figure(items, name, rbm_figures.signature_null_figure, sig, names, caption=caption)
    if not tables["spectra"].empty:
        rep.figure(items, "spectra.png", figures.spectra_figure, tables["spectra"], tables["rbm"])
    if not fields.empty:
        rep.figure(items, "receptive_fields.png", figures.receptive_fields_figure, fields)
    feats = rep.guard("RBM signature features", signature_features, sig, rng, n_boot)
    if feats is not None and not feats.empty:
        items.append(("table", "Where each signature peaks or changes fastest, relative to Tc", feats))
    items.append(("table", "Signature curves (final checkpoint), with their nulls", sig))


def ais_lower_bound_note(free_energy: pd.DataFrame) -> str:
    """A sentence on the final checkpoints whose AIS ln Z did not converge (NaN error): their
    ln Z_RBM, and so their KL per spin, are stochastic lower bounds; "" if there are none."""
    need = {"lnZ_method", "lnZ_rbm_err", "L", "n_hidden", "task_id", "epoch"}
    if free_energy.empty or not need <= set(free_energy.columns):
        return ""
    final = final_checkpoint(free_energy)
    ais = final[final["lnZ_method"] == "ais"]
    open_ = ais[ais["lnZ_rbm_err"].isna()]
    if open_.empty:
        return ""
    sizes = ", ".join(f"L = {L}, n_h = {h}: {len(g)} of {int(((ais['L'] == L) & (ais['n_hidden'] == h)).sum())}"
                      for (L, h), g in open_.groupby(["L", "n_hidden"]))
    return ("Annealed importance sampling did not converge for some RBMs (" + sizes + "): their "
            "ln Z is a stochastic lower bound without an error bar, so their KL per spin is a lower "
            "bound too, and its error bar (the spread over seeds) does not cover the bias.")


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


def flow_section(out, rep, rng, n_boot, ising):
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
    fixed = rep.guard("block-spin fixed points", blockspin_fixed_points, flow, rng, n_boot, ising)
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
        params = rep.guard(f"stacked layers L={L}", read_table, out, "rbm_params",
                        [("L", "=", int(L)), ("task_id", "in", task)])
        fields = projected_fields(params) if params is not None and not params.empty else {}
        if fields:
            rep.figure(items, f"rg_flow_fields_L{L}.png", figures.flow_fields_figure, fields, int(L))
        elif "stacked" in set(g["kind"]):
            rep.missing.append(f"RG flows L={L}: no stacked-layer weights in `rbm_params`")
