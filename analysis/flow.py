"""Where the RG flows of the ``rg_flow`` table go: fixed point, end point, growth with depth.

The flow task (one per lattice size L) writes three flows side by side (the ``rg_flow`` table, README):

* ``blockspin`` — level k is the b x b majority rule applied k times; ``T_eff`` is the
  temperature at which the Monte Carlo energy of the coarse size equals the block spins'
  energy (NaN when it falls outside the sampled range). Near the unstable fixed point T* the
  flow is T' - T* ~ b^{1/nu} (T - T*): T' < T below T*, T' > T above, and T* -> Tc as L grows
  (Kadanoff 1966; Swendsen, PRL 42, 859 (1979)).
* ``rbmflow`` — level k is k steps v -> h -> v of one RBM trained on every T of L pooled; Iso,
  Shiba & Yokoo (PRE 97, 053304 (2018)) found it drifts towards Tc, not away from it.
* ``stacked`` — level k is layer k of a greedily trained stack; ``extent`` is the size on the
  torus of the projected receptive fields W_1 ... W_k, which block-spin RG says should grow.

Functions take the tidy table as pandas reads it and return tidy DataFrames; the fixed point's
error bar is a parametric bootstrap over the ``T_eff`` errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import exact_reference as exact

__all__ = ["flow_steps", "unstable_fixed_point", "blockspin_fixed_points", "rbmflow_endpoints",
           "uniform_extent", "stacked_growth", "flow_summary", "projected_fields"]


def _censored_side(rows: pd.DataFrame, ising: pd.DataFrame | None) -> np.ndarray:
    """-1 / +1 where a NaN ``T_eff`` lies below / above the MC range of its size, else 0.

    The MC energy per spin rises with T, so a coarse energy below the lowest sampled one means
    T' < T_min (the flow ran off the bottom of the grid) and above the highest one T' > T_max.
    """
    side = np.zeros(len(rows))
    if ising is None or ising.empty or not {"L", "T", "e"} <= set(ising.columns):
        return side
    for i, (size, e, t_eff) in enumerate(zip(rows["size"], rows["e"], rows["T_eff"])):
        curve = ising[ising["L"] == size]
        if np.isfinite(t_eff) or curve.empty or not np.isfinite(e):
            continue
        lo, hi = curve.sort_values("T")["e"].iloc[[0, -1]]
        side[i] = -1.0 if e < lo else (1.0 if e > hi else 0.0)
    return side


def flow_steps(flow: pd.DataFrame, ising: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every blockspin / rbmflow row with its step T -> T_eff and the step's direction.

    Parameters
    ----------
    flow : the ``rg_flow`` table.
    ising : the ``ising`` table (optional): places the NaN ``T_eff`` of block spins that left
        the sampled temperature range below or above it.

    Returns
    -------
    DataFrame: L, kind, level, T, T_eff, T_eff_err, dT = T_eff - T, side (-1 / 0 / +1: T_eff
    below / inside / above the sampled range, only for NaN T_eff) and direction: "down"
    (T_eff < T), "up" or "unknown"; level 0 of blockspin (the input itself) is left out.
    """
    rows = flow[flow["kind"].isin(["blockspin", "rbmflow"])]
    rows = rows[~((rows["kind"] == "blockspin") & (rows["level"] == 0))].copy()
    rows["dT"] = rows["T_eff"] - rows["T"]
    rows["side"] = _censored_side(rows, ising)
    sign = np.where(np.isfinite(rows["dT"]), np.sign(rows["dT"]), rows["side"])
    rows["direction"] = np.select([sign < 0, sign > 0], ["down", "up"], "unknown")
    cols = ["L", "kind", "level", "T", "T_eff", "T_eff_err", "dT", "side", "direction"]
    return rows[cols].sort_values(["L", "kind", "level", "T"]).reset_index(drop=True)


def unstable_fixed_point(T, dT, side=None) -> tuple[float, int]:
    """T* where the flow T -> T' turns from going down (T' < T) to going up (T' > T).

    Between successive temperatures where d = T' - T changes sign from - to +, T* is the zero
    of the straight line through (T_i, d_i), (T_{i+1}, d_{i+1}); a neighbour whose T' left the
    sampled range (``side`` = -1 below, +1 above, d NaN) counts with that sign and puts T* at
    the midpoint. With noise several such changes can occur: the one chosen is the threshold
    that leaves the fewest points on the wrong side (d > 0 below it or d < 0 above it).

    Parameters
    ----------
    T : array_like (n,), ascending.
    dT : array_like (n,), T' - T (NaN where unknown).
    side : array_like (n,) or None, the sign to use where dT is NaN (0: unknown).

    Returns
    -------
    (T_star, n_changes): NaN and 0 when the flow never turns from down to up.
    """
    T = np.asarray(T, dtype=np.float64)
    d = np.asarray(dT, dtype=np.float64)
    side = np.zeros_like(d) if side is None else np.asarray(side, dtype=np.float64)
    s = np.where(np.isfinite(d), np.sign(d), side)
    keep = s != 0
    T, d, s = T[keep], d[keep], s[keep]
    candidates = []
    for i in range(T.size - 1):
        if s[i] < 0 < s[i + 1]:
            if np.isfinite(d[i]) and np.isfinite(d[i + 1]):
                candidates.append(T[i] - d[i] * (T[i + 1] - T[i]) / (d[i + 1] - d[i]))
            else:
                candidates.append(0.5 * (T[i] + T[i + 1]))
    if not candidates:
        return float("nan"), 0
    wrong = [np.sum(s[T < c] > 0) + np.sum(s[T > c] < 0) for c in candidates]
    return float(candidates[int(np.argmin(wrong))]), len(candidates)


def blockspin_fixed_points(flow: pd.DataFrame, rng: np.random.Generator, n_boot: int = 200,
                           ising: pd.DataFrame | None = None) -> pd.DataFrame:
    """The block-spin flow's unstable fixed point per L and level, against Tc.

    T* from :func:`unstable_fixed_point` on T_eff(level k) - T (the k-fold map has the same
    fixed point as the one-level map). Error: the standard deviation of T* over a parametric
    bootstrap T_eff* = T_eff + N(0, T_eff_err^2), censored points kept on their side.

    Parameters
    ----------
    flow : the ``rg_flow`` table.
    rng : the caller's Generator.
    n_boot : bootstrap replicas.
    ising : optional ``ising`` table (see :func:`flow_steps`).

    Returns
    -------
    DataFrame: L, level, coarse_size, T_star, T_star_err, delta_Tc (= T_star - Tc), z_Tc,
    n_changes, found (fraction of replicas with a fixed point), n_below, down_below (fraction
    of the T < T_star whose flow goes down), n_above, up_above.
    """
    steps = flow_steps(flow, ising)
    rows = []
    for (L, level), g in steps[steps["kind"] == "blockspin"].groupby(["L", "level"], sort=True):
        g = g.sort_values("T")
        T, dT, err, side = (g[c].to_numpy(dtype=np.float64) for c in ("T", "dT", "T_eff_err", "side"))
        if np.sum(np.isfinite(dT)) < 2:
            continue
        t_star, n_changes = unstable_fixed_point(T, dT, side)
        err = np.where(np.isfinite(err), err, 0.0)
        reps = np.array([unstable_fixed_point(T, dT + err * rng.standard_normal(T.size), side)[0]
                         for _ in range(n_boot)])
        ok = reps[np.isfinite(reps)]
        t_err = float(np.std(ok, ddof=1)) if ok.size > 1 else float("nan")
        below, above = g[g["T"] < t_star], g[g["T"] > t_star]
        size = flow[(flow["L"] == L) & (flow["kind"] == "blockspin") & (flow["level"] == level)]["size"]
        rows.append({"L": int(L), "level": int(level), "coarse_size": int(size.iloc[0]) if len(size) else -1,
                     "T_star": t_star, "T_star_err": t_err, "delta_Tc": t_star - exact.TC,
                     "z_Tc": (t_star - exact.TC) / t_err if t_err > 0 else float("nan"),
                     "n_changes": n_changes, "found": ok.size / n_boot,
                     "n_below": len(below), "down_below": float(np.mean(below["direction"] == "down"))
                     if len(below) else float("nan"),
                     "n_above": len(above), "up_above": float(np.mean(above["direction"] == "up"))
                     if len(above) else float("nan")})
    return pd.DataFrame(rows, columns=["L", "level", "coarse_size", "T_star", "T_star_err", "delta_Tc", "z_Tc",
                                       "n_changes", "found", "n_below", "down_below", "n_above", "up_above"])


def rbmflow_endpoints(flow: pd.DataFrame) -> pd.DataFrame:
    """Where the RBM flow ends after its last step, over all starting temperatures, per L.

    Returns
    -------
    DataFrame: L, steps, n_start, n_lost (starts whose last T_eff is NaN), T_end_mean,
    T_end_sem, T_end_spread (standard deviation over starting T), T_end_min, T_end_max,
    delta_Tc (= T_end_mean - Tc), start_spread (standard deviation of T_eff at step 0) and
    closer_to_Tc (fraction of starts with |T_end - Tc| < |T - Tc|).
    """
    rows = []
    for L, g in flow[flow["kind"] == "rbmflow"].groupby("L", sort=True):
        last = int(g["level"].max())
        end = g[g["level"] == last].sort_values("T")
        start = g[g["level"] == 0]["T_eff"].dropna()
        t_end = end["T_eff"].dropna()
        ok = end.dropna(subset=["T_eff"])
        n = t_end.size
        rows.append({"L": int(L), "steps": last, "n_start": len(end), "n_lost": len(end) - n,
                     "T_end_mean": float(t_end.mean()) if n else float("nan"),
                     "T_end_sem": float(t_end.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
                     "T_end_spread": float(t_end.std(ddof=1)) if n > 1 else float("nan"),
                     "T_end_min": float(t_end.min()) if n else float("nan"),
                     "T_end_max": float(t_end.max()) if n else float("nan"),
                     "delta_Tc": float(t_end.mean()) - exact.TC if n else float("nan"),
                     "start_spread": float(start.std(ddof=1)) if start.size > 1 else float("nan"),
                     "closer_to_Tc": float(np.mean(np.abs(ok["T_eff"] - exact.TC) < np.abs(ok["T"] - exact.TC)))
                     if n else float("nan")})
    return pd.DataFrame(rows)


def uniform_extent(L: int) -> float:
    """Extent (torus radius of gyration) of a uniform L x L field, sqrt((L^2 - 1) / 6): the maximum."""
    return float(np.sqrt((L * L - 1) / 6.0))


def stacked_growth(flow: pd.DataFrame) -> pd.DataFrame:
    """Does the receptive-field extent grow with depth? Per L and pair of successive layers.

    Returns
    -------
    DataFrame: L, layer, next_layer, n_T, grows (fraction of T with extent(k+1) > extent(k)),
    extent, next_extent (means over T), uniform_extent (sqrt((L^2 - 1) / 6), the extent of a
    uniform field and the largest possible: extents near it cannot grow further), alignment,
    next_alignment (mean alignment at the block size b^k each layer should see), T_grows (the
    temperatures where it grows).
    """
    st = flow[flow["kind"] == "stacked"]
    rows = []
    for L, g in st.groupby("L", sort=True):
        wide = g.pivot_table(index="T", columns="level", values="extent")
        align = g.pivot_table(index="T", columns="level", values="mean_alignment")
        layers = sorted(wide.columns)
        for k, k1 in zip(layers[:-1], layers[1:]):
            pair = wide[[k, k1]].dropna()
            grows = pair[k1] > pair[k]
            rows.append({"L": int(L), "layer": int(k), "next_layer": int(k1), "n_T": len(pair),
                         "grows": float(grows.mean()) if len(pair) else float("nan"),
                         "extent": float(pair[k].mean()), "next_extent": float(pair[k1].mean()),
                         "uniform_extent": uniform_extent(int(L)),
                         "alignment": float(align[k].mean()), "next_alignment": float(align[k1].mean()),
                         "T_grows": ", ".join(f"{t:.3f}" for t in pair.index[grows.to_numpy()])})
    return pd.DataFrame(rows)


def flow_summary(fixed: pd.DataFrame, ends: pd.DataFrame, growth: pd.DataFrame) -> pd.DataFrame:
    """One row per L and kind: where the flow goes, in one number with its error, against Tc.

    Returns
    -------
    DataFrame: L, kind, quantity, value, error, Tc, verdict.
    """
    rows = []
    for r in fixed.itertuples():
        rows.append({"L": r.L, "kind": "blockspin", "quantity": f"unstable fixed point T*, level {r.level} "
                     f"(L -> {r.coarse_size})", "value": r.T_star, "error": r.T_star_err, "Tc": exact.TC,
                     "verdict": f"T* - Tc = {r.delta_Tc:+.3f} ({r.z_Tc:+.1f} sigma); goes down below T* at "
                                f"{r.down_below:.0%} of {r.n_below} T, up above at {r.up_above:.0%} of {r.n_above} T"})
    for r in ends.itertuples():
        rows.append({"L": r.L, "kind": "rbmflow", "quantity": f"T_eff after {r.steps} steps (mean over "
                     f"{r.n_start - r.n_lost} starting T; error: spread)", "value": r.T_end_mean,
                     "error": r.T_end_spread, "Tc": exact.TC,
                     "verdict": f"mean - Tc = {r.delta_Tc:+.3f}; spread {r.start_spread:.3f} at step 0 -> "
                                f"{r.T_end_spread:.3f}; ends closer to Tc than it started for {r.closer_to_Tc:.0%}"})
    for r in growth.itertuples():
        rows.append({"L": r.L, "kind": "stacked", "quantity": f"fraction of T with extent(layer {r.next_layer}) "
                     f"> extent(layer {r.layer})", "value": r.grows, "error": float("nan"), "Tc": exact.TC,
                     "verdict": f"mean extent {r.extent:.3f} -> {r.next_extent:.3f} over {r.n_T} T "
                                f"(uniform field: {r.uniform_extent:.3f})"})
    return pd.DataFrame(rows, columns=["L", "kind", "quantity", "value", "error", "Tc", "verdict"])


def projected_fields(params: pd.DataFrame) -> dict[float, list[np.ndarray]]:
    """Receptive fields of every stacked layer projected onto the lattice, per temperature.

    F_1 = W_1, F_k = W_1 W_2 ... W_k, shape (N, n_k) (Mehta & Schwab, arXiv:1410.3831, fig. 4).

    Parameters
    ----------
    params : ``rbm_params`` rows of one flow task (one L): columns T, layer, epoch, n_visible,
        n_hidden, W (row-major (n_visible, n_hidden)); the last epoch of each layer is used.

    Returns
    -------
    dict T -> [F_1, F_2, ...] (float64); a T whose layers do not chain is left out.
    """
    out = {}
    for T, g in params.groupby("T", sort=True):
        g = g[g["epoch"] == g.groupby("layer")["epoch"].transform("max")].sort_values("layer")
        fields = []
        for w, nv, nh in zip(g["W"], g["n_visible"], g["n_hidden"]):
            W = np.asarray(w, dtype=np.float64).reshape(int(nv), int(nh))
            if fields and fields[-1].shape[1] != W.shape[0]:
                break
            fields.append(W if not fields else fields[-1] @ W)
        if fields and len(fields) == g["layer"].nunique():
            out[float(T)] = fields
    return out
