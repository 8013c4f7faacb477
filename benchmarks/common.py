"""What every benchmark suite shares: records, repeats, timing, ratios against peers, reporting.

A record is ``{"suite", "impl", "params", "metric", "unit", "median", "min", "max", "n"}``;
``impl`` is ``rgsweep`` (or ``rgsweep-<variant>``) for ours and the peer's package name otherwise.
Ratios ("x" records, ``speedup_vs_<peer>``) are computed pair by pair within one run.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from typing import Callable

__all__ = ["record", "note", "repeat", "timed", "ratios", "print_table", "write_json"]


def record(suite, impl, params, metric, unit, values) -> dict:
    values = [float(v) for v in values]
    return {"suite": suite, "impl": impl, "params": params, "metric": metric, "unit": unit,
            "median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def note(message: str) -> None:
    print(f"  note: {message}", flush=True)


def repeat(fn: Callable[[], float], n: int) -> list[float]:
    """``n`` calls of ``fn``, each returning one figure (after one untimed warm-up call)."""
    fn()
    return [fn() for _ in range(n)]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out



def ratios(records: list[dict]) -> list[dict]:
    """``speedup_vs_<peer>`` for every peer record with an rgsweep record of the same suite and
    params: peer time / our time, or our throughput / peer throughput."""
    ours = {(r["suite"], json.dumps(r["params"], sort_keys=True)): r for r in records
            if r["impl"].startswith("rgsweep") and r["unit"] not in ("x",)}
    out = []
    for r in records:
        if r["impl"].startswith("rgsweep"):
            continue
        mine = ours.get((r["suite"], json.dumps(r["params"], sort_keys=True)))
        if mine is None:
            continue
        higher_is_better = r["unit"].endswith("/s")
        ratio = mine["median"] / r["median"] if higher_is_better else r["median"] / mine["median"]
        out.append(record(r["suite"], mine["impl"], r["params"], f"speedup_vs_{r['impl']}", "x",
                           [ratio]))
    return out


def print_table(suite: str, records: list[dict]) -> None:
    print(f"\n== {suite} ==")
    print(f"{'impl':<22} {'params':<44} {'metric':<30} {'median':>12} {'min':>12} {'max':>12}  unit")
    for r in records:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['impl']:<22} {params:<44} {r['metric']:<30} {r['median']:>12.4g} "
              f"{r['min']:>12.4g} {r['max']:>12.4g}  {r['unit']}")


def write_json(path: str, records: list[dict]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(records, f, indent=1)
    os.replace(tmp, path)

