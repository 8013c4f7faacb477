"""RBM signatures against T for each L, each beside its null, and where each one peaks or turns.

For every trained RBM (final checkpoint) the signatures are: KL per spin and test NLL
(``free_energy``); the fidelity of F(v) as an effective Hamiltonian, raw (slope and R^2 of F
against beta H) and beyond the magnetisation (the same after removing a polynomial in m);
lambda_max, effective rank, outliers above the Marchenko-Pastur law fitted to the bulk and the
KS distance to it (``spectra``); per block size b the mean block-alignment score, its excess over
the same weights with the lattice sites permuted, and the excess of |corr| over that null
(``rg_alignment``); RBM-generated e, |m|, C, chi relative to Monte Carlo on the same samples
(``rbm``); and the speed of the learned geometry, W2(Sigma_T, Sigma_T') / |T - T'| between
neighbouring temperatures, with the Bures-Wasserstein distance
W2^2 = ||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_* (Bhatia, Jain & Lim, Expo. Math. 37, 165 (2019)).

The null of a signature is what a model that knows nothing gives: the same RBM at epoch 0 (its
random initialisation) for KL, the fits and the spectrum; the permuted-site model for alignment
(whose excess is then 0 by construction, so its null is the excess at epoch 0).

Values are averaged over ``rbm_seed``. The error is the standard error over seeds when there are
several (it then includes the spread of training itself); with one seed it is the measurement's
own error (KL, fits: from the task; alignment: over hidden units, an underestimate since units
of one RBM are not independent), NaN where there is none. :func:`signature_features` then
locates the maximum or the steepest change of each curve with a parametric bootstrap error bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.estimators import bures_wasserstein_sq

from . import exact_reference as exact

__all__ = ["GROUP", "SIGNATURE_LABELS", "training_stage", "final_checkpoint", "bures_wasserstein",
           "signature_table", "transport_speed", "hidden_units_table", "feature_location",
           "signature_features"]

GROUP = ["L", "n_hidden", "method"]
"""A signature curve is one (L, n_hidden, method) against T."""

#: Column names of the long table, in words (axis labels, captions).
SIGNATURE_LABELS = {
    "kl_per_spin": "KL(p_Ising || p_RBM) per spin [nats]",
    "nll_test": "held-out negative log-likelihood per spin [nats]",
    "heff_r2": "R² of F(v) against βH(v)",
    "heff_slope": "slope of F(v) against βH(v)",
    "heff_partial_r2": "R² of F(v) against βH(v) beyond m",
    "heff_partial_slope": "slope of F(v) against βH(v) beyond m",
    "lambda_max": "largest eigenvalue of W Wᵀ",
    "effective_rank": "effective rank of W Wᵀ",
    "n_outliers": "eigenvalues above the fitted MP bulk",
    "mp_ks": "KS distance of the bulk to its MP law",
    "bw_speed": "Bures-Wasserstein speed W₂/ΔT",
    "rel_e": "RBM e / MC e - 1", "rel_m_abs": "RBM |m| / MC |m| - 1",
    "rel_C": "RBM C / MC C - 1", "rel_chi": "RBM χ / MC χ - 1",
    "w1_e": "W₁ distance of the e distributions", "w1_m": "W₁ distance of the |m| distributions",
}

_FE = ("kl_per_spin", "nll_test", "heff_slope", "heff_r2", "heff_partial_slope", "heff_partial_r2")
_SPEC = ("lambda_max", "effective_rank", "n_outliers", "mp_ks")
_MC_PAIRS = (("e", "mc_e"), ("m_abs", "mc_m_abs"), ("C", "mc_C"), ("chi", "mc_chi"))
_COLUMNS = GROUP + ["T", "signature", "value", "err", "null", "null_err", "n_seeds"]


def training_stage(frame: pd.DataFrame, rbm: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` that belong to the training stage's RBMs, not to an rg_flow stack.

    The flow task writes its stacked layers to ``rbm_params``, ``spectra`` and ``rg_alignment``
    too (``layer`` = depth, ``task_id`` = the flow task's); the training stage's RBMs are the
    rows whose task_id is in the ``rbm`` table, at layer 1.
    """
    if frame.empty or "task_id" not in frame.columns:
        return frame
    ids = set(rbm["task_id"]) if "task_id" in rbm.columns else set()
    keep = frame["task_id"].isin(ids)
    if "layer" in frame.columns:
        keep &= frame["layer"].fillna(1) == 1
    return frame[keep].reset_index(drop=True)


def final_checkpoint(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each training task's last recorded epoch."""
    if frame.empty or "epoch" not in frame.columns:
        return frame
    last = frame.groupby("task_id")["epoch"].transform("max")
    return frame[frame["epoch"] == last]


def _initial(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each task's epoch 0 (the initialisation)."""
    if frame.empty or "epoch" not in frame.columns:
        return frame.iloc[:0]
    return frame[frame["epoch"] == 0]


def bures_wasserstein(W1, W2) -> float:
    """2-Wasserstein distance between N(0, W1 W1^T) and N(0, W2 W2^T)
    (:func:`contract.estimators.bures_wasserstein_sq`, a distance rather than its square)."""
    return float(np.sqrt(bures_wasserstein_sq(W1, W2)))


def _aggregate(per_task: pd.DataFrame, name: str) -> pd.DataFrame:
    """Per-task rows (GROUP, T, rbm_seed, value[, err, null, null_err]) -> one row per curve point.

    Over several seeds: mean and standard error of the mean across them. With one seed: its
    value and its own error.
    """
    frame = per_task.copy()
    for col in ("err", "null", "null_err"):
        if col not in frame.columns:
            frame[col] = np.nan
    rows = []
    for key, g in frame.groupby(GROUP + ["T"], sort=True):
        n = int(g["value"].notna().sum())
        row = dict(zip(GROUP + ["T"], key), signature=name, n_seeds=n)
        for col, err_col in (("value", "err"), ("null", "null_err")):
            valid = g[g[col].notna()]
            vals = valid[col]
            row[col] = float(vals.mean()) if len(vals) else np.nan
            row[err_col] = (float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1
                            else float(valid[err_col].iloc[0]) if len(vals) == 1 else np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=_COLUMNS)


def _by_task(final: pd.DataFrame, initial: pd.DataFrame, col: str, err_col=None) -> pd.DataFrame:
    """value/err from the final checkpoint and null/null_err from epoch 0, per task."""
    keys = GROUP + ["T", "rbm_seed", "task_id"]
    out = final[keys].copy()
    out["value"] = final[col].to_numpy()
    out["err"] = final[err_col].to_numpy() if err_col in final.columns else np.nan
    if not initial.empty and col in initial.columns:
        ini = initial.drop_duplicates("task_id").set_index("task_id")
        out["null"] = out["task_id"].map(ini[col])
        out["null_err"] = out["task_id"].map(ini[err_col]) if err_col in ini.columns else np.nan
    return out


def _unit_means(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    """Mean of ``col`` over hidden units per (task, block), with its standard error over units."""
    g = frame.groupby(GROUP + ["T", "rbm_seed", "task_id", "block"])[col]
    out = g.agg(value="mean", sd="std", n="count").reset_index()
    out["err"] = out["sd"] / np.sqrt(out["n"])
    return out.drop(columns=["sd", "n"])


def _alignment_signatures(align: pd.DataFrame) -> list[pd.DataFrame]:
    final, initial = final_checkpoint(align), _initial(align)
    parts = []
    have_null = "null_score" in align.columns and align["null_score"].notna().any()
    score = _unit_means(final, "score")
    if have_null:
        null = _unit_means(final, "null_score").rename(columns={"value": "null", "err": "null_err"})
        score = score.merge(null, on=GROUP + ["T", "rbm_seed", "task_id", "block"])
    for b, g in score.groupby("block"):
        parts.append(_aggregate(g, f"alignment_b{int(b)}"))
    if not have_null:
        return parts
    for name, col, null_col in (("alignment_excess", "score", "null_score"),
                                ("corr_excess", "corr", "null_corr")):
        if col not in align.columns or null_col not in align.columns:
            continue
        fin = final.assign(_x=final[col] - final[null_col])
        ini = initial.assign(_x=initial[col] - initial[null_col])
        v = _unit_means(fin, "_x")
        if not ini.empty:
            n = _unit_means(ini, "_x").rename(columns={"value": "null", "err": "null_err"})
            v = v.merge(n[["task_id", "block", "null", "null_err"]], on=["task_id", "block"], how="left")
        for b, g in v.groupby("block"):
            if g["value"].notna().any():
                parts.append(_aggregate(g, f"{name}_b{int(b)}"))
    return parts


def _relative(rbm: pd.DataFrame, obs: str, mc: str) -> pd.DataFrame:
    """RBM / MC - 1 per task with first-order error propagation."""
    out = rbm[GROUP + ["T", "rbm_seed", "task_id"]].copy()
    ratio = rbm[obs] / rbm[mc]
    out["value"] = ratio - 1.0
    out["err"] = np.abs(ratio) * np.hypot(rbm[f"{obs}_err"] / rbm[obs], rbm[f"{mc}_err"] / rbm[mc])
    return out


def transport_speed(params: pd.DataFrame) -> pd.DataFrame:
    """W2 between the final Sigma of neighbouring temperatures, per L, n_hidden, method, seed.

    Parameters
    ----------
    params : ``rbm_params`` rows (any epochs; the final one of each task is used).

    Returns
    -------
    DataFrame: L, n_hidden, method, rbm_seed, T (midpoint), T_low, T_high, w2, speed = w2 / dT.
    """
    rows = []
    final = final_checkpoint(params)
    for key, group in final.groupby(GROUP + ["rbm_seed"], sort=True):
        group = group.sort_values("T")
        Ws = [np.asarray(w, dtype=np.float64).reshape(int(nv), int(nh))
              for w, nv, nh in zip(group["W"], group["n_visible"], group["n_hidden"])]
        temps = group["T"].to_numpy()
        for i in range(len(Ws) - 1):
            d = bures_wasserstein(Ws[i], Ws[i + 1])
            rows.append(dict(zip(GROUP + ["rbm_seed"], key), T=0.5 * (temps[i] + temps[i + 1]),
                             T_low=temps[i], T_high=temps[i + 1], w2=d,
                             speed=d / (temps[i + 1] - temps[i])))
    return pd.DataFrame(rows)


def signature_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All RBM signatures at the final checkpoint with their nulls, long format.

    Parameters
    ----------
    tables : dict name -> DataFrame for any of ``rbm``, ``free_energy``, ``spectra``,
        ``rg_alignment``, ``rbm_params`` (missing or empty tables contribute nothing); instead
        of ``rbm_params`` (large) a precomputed ``transport_speed`` (:func:`transport_speed`).

    Returns
    -------
    DataFrame: L, n_hidden, method, T, signature, value, err, null, null_err, n_seeds.
    """
    parts = []
    fe = tables.get("free_energy", pd.DataFrame())
    if not fe.empty:
        final, initial = final_checkpoint(fe), _initial(fe)
        for col in _FE:
            if col in fe.columns:
                parts.append(_aggregate(_by_task(final, initial, col, f"{col}_err"), col))
    spec = tables.get("spectra", pd.DataFrame())
    if not spec.empty:
        final, initial = final_checkpoint(spec).drop_duplicates("task_id"), _initial(spec)
        for col in _SPEC:
            if col in spec.columns:
                parts.append(_aggregate(_by_task(final, initial, col), col))
    align = tables.get("rg_alignment", pd.DataFrame())
    if not align.empty:
        parts += _alignment_signatures(align)
    rbm = tables.get("rbm", pd.DataFrame())
    if not rbm.empty:
        for obs, mc in _MC_PAIRS:
            if {obs, mc, f"{obs}_err", f"{mc}_err"} <= set(rbm.columns):
                parts.append(_aggregate(_relative(rbm, obs, mc), f"rel_{obs}"))
                z = rbm[GROUP + ["T", "rbm_seed"]].copy()
                z["value"] = (rbm[obs] - rbm[mc]) / np.hypot(rbm[f"{obs}_err"], rbm[f"{mc}_err"])
                parts.append(_aggregate(z, f"rbm_minus_mc_z_{obs}"))
        for col in ("w1_e", "w1_m"):
            if col in rbm.columns:
                parts.append(_aggregate(rbm[GROUP + ["T", "rbm_seed"]].assign(value=rbm[col]), col))
    speed = tables.get("transport_speed")
    if speed is None:
        params = tables.get("rbm_params", pd.DataFrame())
        speed = transport_speed(params) if not params.empty else pd.DataFrame()
    if not speed.empty:
        parts.append(_aggregate(speed.assign(value=speed["speed"]), "bw_speed"))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=_COLUMNS)
    return pd.concat(parts, ignore_index=True).sort_values(GROUP + ["signature", "T"]).reset_index(drop=True)


def hidden_units_table(rbm: pd.DataFrame) -> pd.DataFrame:
    """How many hidden units the physics needs (Torlai & Melko, PRB 94, 165134 (2016)).

    For every L trained with at least two hidden-layer sizes: RBM / MC - 1 of e and C (and |m|,
    chi) against n_hidden, per T, mean and standard error over seeds (one seed: propagated
    measurement errors).

    Returns
    -------
    DataFrame: L, T, n_hidden, method, n_seeds and rel_{e, m_abs, C, chi} with ``_err``.
    """
    if rbm.empty or "n_hidden" not in rbm.columns:
        return pd.DataFrame()
    multi = rbm.groupby("L")["n_hidden"].transform("nunique") >= 2
    rbm = rbm[multi]
    if rbm.empty:
        return pd.DataFrame()
    out = None
    for obs, mc in _MC_PAIRS:
        if not {obs, mc, f"{obs}_err", f"{mc}_err"} <= set(rbm.columns):
            continue
        agg = _aggregate(_relative(rbm, obs, mc), obs)[GROUP + ["T", "value", "err", "n_seeds"]]
        agg = agg.rename(columns={"value": f"rel_{obs}", "err": f"rel_{obs}_err"})
        out = agg if out is None else out.merge(agg.drop(columns="n_seeds"), on=GROUP + ["T"])
    return out.sort_values(["L", "T", "n_hidden"]).reset_index(drop=True) if out is not None else pd.DataFrame()


def _vertex(x, y):
    """Abscissa of the extremum of the least-squares parabola through (x, y), or NaN."""
    c = np.polyfit(x - x.mean(), y, 2)
    return x.mean() - c[1] / (2 * c[0]) if c[0] != 0 else np.nan


def _locate(T, y, kind):
    if kind == "steepest":
        x, d = 0.5 * (T[1:] + T[:-1]), np.abs(np.diff(y) / np.diff(T))
    else:
        x, d = T, y
    i = int(np.nanargmax(d))
    if i == 0 or i == x.size - 1:
        return float(x[i]), True
    window = slice(i - 1, i + 2)
    v = _vertex(x[window], d[window])
    return float(np.clip(v, x[i - 1], x[i + 1])) if np.isfinite(v) else float(x[i]), False


def feature_location(T, y, yerr, kind: str, rng: np.random.Generator, n_boot: int = 200) -> dict:
    """Where a curve y(T) peaks (``kind="peak"``) or changes fastest (``kind="steepest"``).

    The grid maximum of y (or of |dy/dT| on interval midpoints) is refined by the vertex of a
    parabola through it and its two neighbours. The error bar is the spread of the same
    estimate over a parametric bootstrap y* = y + N(0, yerr^2); where yerr is unknown it is
    estimated from second differences, sigma^2 = mean((y_{i-1} - 2 y_i + y_{i+1})^2) / 6, which
    counts real curvature as noise and so errs on the large side.

    Parameters
    ----------
    T, y, yerr : array_like, shape (n_T,), n_T >= 3; T ascending.
    kind : "peak" or "steepest".
    rng : the caller's Generator.

    Returns
    -------
    dict: T_feature, T_feature_err, delta_Tc (= T_feature - Tc), at_edge, noise ("given" or
    "second differences").
    """
    if kind not in ("peak", "steepest"):
        raise ValueError(f"kind must be 'peak' or 'steepest', got {kind!r}")
    T = np.asarray(T, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    err = np.asarray(yerr, dtype=np.float64)
    if T.size < 3:
        raise ValueError(f"need at least 3 temperatures, got {T.size}")
    noise = "given"
    if not np.all(np.isfinite(err)):
        sigma = np.sqrt(np.mean(np.diff(y, 2) ** 2) / 6.0)
        err = np.where(np.isfinite(err), err, sigma)
        noise = "second differences"
    t0, edge = _locate(T, y, kind)
    reps = np.array([_locate(T, y + rng.standard_normal(y.size) * err, kind)[0] for _ in range(n_boot)])
    return {"T_feature": t0, "T_feature_err": float(np.std(reps, ddof=1)),
            "delta_Tc": t0 - exact.TC, "at_edge": edge, "noise": noise}


_PEAKS = {"kl_per_spin", "nll_test", "lambda_max", "n_outliers", "mp_ks", "bw_speed", "w1_e", "w1_m"}


def signature_features(table: pd.DataFrame, rng: np.random.Generator, n_boot: int = 200
                       ) -> pd.DataFrame:
    """Peak and steepest-change temperature of every signature curve, relative to Tc.

    Parameters
    ----------
    table : output of :func:`signature_table`.
    rng : the caller's Generator.

    Returns
    -------
    DataFrame: L, n_hidden, method, signature, kind, T_feature, T_feature_err, delta_Tc,
    z_Tc (= delta_Tc / T_feature_err), at_edge, noise. Curves with fewer than 3 temperatures
    are skipped. Kinds: "peak" for signatures expected to peak near Tc (KL, NLL, lambda_max,
    outliers, W2 speed), "steepest" for all of them.
    """
    rows = []
    for key, curve in table.groupby(GROUP + ["signature"], sort=True):
        curve = curve.dropna(subset=["value"]).sort_values("T")
        if len(curve) < 3:
            continue
        kinds = ("peak", "steepest") if key[-1] in _PEAKS else ("steepest",)
        for kind in kinds:
            feat = feature_location(curve["T"], curve["value"], curve["err"], kind, rng, n_boot)
            feat["z_Tc"] = feat["delta_Tc"] / feat["T_feature_err"] if feat["T_feature_err"] > 0 else np.nan
            rows.append({**dict(zip(GROUP + ["signature"], key)), "kind": kind, **feat})
    return pd.DataFrame(rows)
