"""The report's section on an adaptive sweep (``[refine]``): its rounds from ``OUT/refine.json``,
the estimate converging round by round against the exact value, and why the rounds stopped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from contract.layout import filesystem, refine_key

from . import exact_reference as exact
from .figure_output import save_figure

__all__ = ["read_refine", "rounds_table", "refine_section", "refine_figure"]


def _json(fs, path):
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def read_refine(out) -> dict | None:
    """``OUT/refine.json`` if the spec that last ran on OUT has ``[refine]`` and made it (None
    otherwise: a record of an earlier spec describes rounds whose data the loaders skip)."""
    fs, root = filesystem(str(out))
    record, sweep = _json(fs, f"{root}/refine.json"), _json(fs, f"{root}/sweep.json")
    spec = (sweep or {}).get("spec", {})
    if record is None or "refine" not in spec or record.get("key") != refine_key(spec):
        return None
    return record


def rounds_table(record: dict) -> pd.DataFrame:
    """One row per round: temperatures added per L, (L, T) points, the estimate with its error
    (NaN / inf while unknown), z against the exact Tc (target tc), the whole sweep's predicted
    core-hours and the sampling core-seconds measured (both cumulative)."""
    rows = []
    for r in record["rounds"]:
        added = r.get("added", {})
        est, err = r.get("estimate"), r.get("error")
        est = float("nan") if est is None else est
        err = float("inf") if err is None else err
        rows.append({"round": r["round"],
                     "added per L": "; ".join(f"L={L}: {', '.join(f'{t:.5f}' for t in ts)}"
                                              for L, ts in sorted(added.items(), key=lambda kv: int(kv[0]))) or "grid",
                     "points": sum(r.get("temperatures", {}).values()) or np.nan,
                     "estimate": est, "error": err,
                     "z vs exact Tc": (est - exact.TC) / err if record.get("target") == "tc" and 0 < err < np.inf else np.nan,
                     "sweep core-h predicted": (r.get("sweep_core_seconds_predicted") or np.nan) / 3600,
                     "sampling core-s": r.get("sampling_core_seconds", np.nan)})
    return pd.DataFrame(rows)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """The rounds table for the page: estimates to 1e-5, "not resolved" where the error is unknown."""
    out = table.copy()
    known = np.isfinite(table["error"].to_numpy(dtype=float))
    out["estimate"] = [f"{v:.5f}" if np.isfinite(v) else "–" for v in table["estimate"]]
    out["error"] = [f"{e:.5f}" if k else ("not resolved" if np.isfinite(v) else "–")
                    for e, k, v in zip(table["error"], known, table["estimate"])]
    return out


def refine_figure(table: pd.DataFrame, target: str, path) -> Path:
    """The estimate with its error bar against the round (and the exact Tc for target tc)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    done = table[np.isfinite(table["estimate"].astype(float)) & np.isfinite(table["error"].astype(float))]
    axes[0].errorbar(done["round"], done["estimate"], yerr=done["error"], marker="o", capsize=3, color="#0072B2")
    if target == "tc":
        axes[0].axhline(exact.TC, color="0.4", ls=":", lw=1, label=r"$T_c$ (Onsager)")
        axes[0].legend(fontsize=8)
    axes[0].set_xlabel("round")
    axes[0].set_ylabel(r"estimate [$J/k_B$]")
    axes[1].semilogy(done["sampling core-s"], done["error"], marker="o", color="#D55E00")
    axes[1].set_xlabel("sampling core-seconds (cumulative, measured)")
    axes[1].set_ylabel(r"error bar [$J/k_B$]")
    return save_figure(fig, path)


def refine_section(out, rep) -> None:
    record = read_refine(out)
    if record is None:
        return
    items = rep.section("Adaptive refinement ([refine])")
    table = rounds_table(record)
    stop = record.get("stopped") or {}
    what = next((r.get("what") for r in reversed(record["rounds"]) if r.get("what")), record.get("target"))
    items.append(("text", f"target {record.get('target')}: {what}; {len(table)} round(s); "
                          + (f"stopped at round {stop.get('round')}: {stop.get('reason')}" if stop
                             else "the rounds have not finished (rerun `rgsweep run` to resume)")))
    items.append(("table", "Rounds: the temperatures each added, and the estimate after it", _shown(table)))
    rep.figure(items, "refine.png", refine_figure, table, record.get("target"),
               caption="Left: the estimate after each round with its bootstrap error bar (dotted: exact). "
                       "Right: its error bar against the sampling core-seconds spent so far.")
