"""RBM signatures against T for each L, and where each one peaks or turns, relative to Tc.

For every trained RBM (final checkpoint) the signatures are: KL per spin and test NLL
(``free_energy``), the fidelity of F(v) as an effective Hamiltonian (slope and R^2 of F against
beta H), lambda_max and the number of outliers above the Marchenko-Pastur edge of
Sigma = W W^T (``spectra``), the mean block-alignment score per block size b (``rg_alignment``),
RBM-vs-MC observable errors in units of their combined error (``rbm``), and the speed of the
learned geometry, W2(Sigma_T, Sigma_T') / |T - T'| between neighbouring temperatures, with the
Bures-Wasserstein distance W2^2 = ||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_* (DESIGN.md, optimal
transport; Bhatia, Jain & Lim, Expo. Math. 37, 165 (2019)).

Values are averaged over ``rbm_seed``; the error is the standard error over seeds when there are
several (over hidden units for the alignment score, an underestimate since units of one RBM are
not independent), NaN otherwise. :func:`signature_features` then locates the maximum or the
steepest change of each curve with a parametric bootstrap error bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import exact_reference as exact

__all__ = ["GROUP", "training_stage", "final_checkpoint", "bures_wasserstein", "signature_table",
           "transport_speed", "feature_location", "signature_features"]

GROUP = ["L", "n_hidden", "method"]
"""A signature curve is one (L, n_hidden, method) against T."""

_SCALARS_FE = ("kl_per_spin", "nll_test", "heff_slope", "heff_r2")
_SCALARS_SPEC = ("lambda_max", "n_outliers", "effective_rank")
_MC_PAIRS = (("e", "mc_e"), ("m_abs", "mc_m_abs"), ("C", "mc_C"), ("chi", "mc_chi"))


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


def bures_wasserstein(W1, W2) -> float:
    """2-Wasserstein distance between N(0, W1 W1^T) and N(0, W2 W2^T).

    ``W2^2 = ||W1||_F^2 + ||W2||_F^2 - 2 ||W1^T W2||_*`` (n_hidden x n_hidden work only).

    Parameters
    ----------
    W1, W2 : array_like, shapes (n_visible, n_h1), (n_visible, n_h2).

    Returns
    -------
    float >= 0
    """
    W1 = np.asarray(W1, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    if W1.ndim != 2 or W2.ndim != 2 or W1.shape[0] != W2.shape[0]:
        raise ValueError(f"W1, W2 must be 2-d with equal n_visible, got {W1.shape} and {W2.shape}")
    nuclear = np.linalg.svd(W1.T @ W2, compute_uv=False).sum()
    return float(np.sqrt(max(np.sum(W1**2) + np.sum(W2**2) - 2.0 * nuclear, 0.0)))


def _seed_mean(frame: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    g = frame.groupby(GROUP + ["T"])[column]
    out = g.agg(value="mean", count="count", std="std").reset_index()
    out["err"] = np.where(out["count"] > 1, out["std"] / np.sqrt(out["count"]), np.nan)
    out["signature"] = name
    return out[GROUP + ["T", "signature", "value", "err"]]


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
    """All RBM signatures at the final checkpoint, long format.

    Parameters
    ----------
    tables : dict name -> DataFrame for any of ``rbm``, ``free_energy``, ``spectra``,
        ``rg_alignment``, ``rbm_params`` (missing or empty tables contribute nothing); instead
        of ``rbm_params`` (large) a precomputed ``transport_speed`` (:func:`transport_speed`).

    Returns
    -------
    DataFrame: L, n_hidden, method, T, signature, value, err.
    """
    parts = []
    fe = final_checkpoint(tables.get("free_energy", pd.DataFrame()))
    for col in _SCALARS_FE:
        if not fe.empty and col in fe.columns:
            parts.append(_seed_mean(fe, col, col))
    spec = final_checkpoint(tables.get("spectra", pd.DataFrame()))
    if not spec.empty:
        per_task = spec.drop_duplicates("task_id")
        for col in _SCALARS_SPEC:
            if col in per_task.columns:
                parts.append(_seed_mean(per_task, col, col))
    align = final_checkpoint(tables.get("rg_alignment", pd.DataFrame()))
    if not align.empty:
        for b, group in align.groupby("block"):
            parts.append(_seed_mean(group, "score", f"alignment_b{int(b)}"))
    rbm = tables.get("rbm", pd.DataFrame())
    if not rbm.empty:
        rbm = rbm.copy()
        for obs, mc in _MC_PAIRS:
            if {obs, mc, f"{obs}_err", f"{mc}_err"} <= set(rbm.columns):
                rbm[f"dz_{obs}"] = (rbm[obs] - rbm[mc]) / np.hypot(rbm[f"{obs}_err"], rbm[f"{mc}_err"])
                parts.append(_seed_mean(rbm, f"dz_{obs}", f"rbm_minus_mc_z_{obs}"))
        for col in ("w1_e", "w1_m"):
            if col in rbm.columns:
                parts.append(_seed_mean(rbm, col, col))
    speed = tables.get("transport_speed")
    if speed is None:
        params = tables.get("rbm_params", pd.DataFrame())
        speed = transport_speed(params) if not params.empty else pd.DataFrame()
    if not speed.empty:
        parts.append(_seed_mean(speed, "speed", "bw_speed"))
    if not parts:
        return pd.DataFrame(columns=GROUP + ["T", "signature", "value", "err"])
    return pd.concat(parts, ignore_index=True).sort_values(GROUP + ["signature", "T"]).reset_index(drop=True)


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


_PEAKS = {"kl_per_spin", "nll_test", "lambda_max", "n_outliers", "bw_speed", "w1_e", "w1_m"}


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
