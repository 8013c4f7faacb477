"""``[refine]``: an adaptive sweep, run as rounds of temperatures chosen from the data.

Round 0 is the spec's grid. After each round the target is estimated from the dataset
(:func:`analysis.refine.estimate`) and the next round's temperatures placed where they shrink
its error most (:func:`analysis.refine.propose`); only the new tasks run (ids are content
hashes: nothing done is redone). The rounds stop when the error is at most ``precision``, after
``max_rounds`` rounds, when the next round would take the sweep's predicted core-seconds past
``budget_core_hours`` (the cost model's figure, so that the same spec stops at the same round
on every machine), or when no new temperature can be placed; the flow tasks, which depend on
every temperature of their lattice size, run once after the last round.

``OUT/refine.json`` records every round before it runs (its temperatures) and after (the
estimate with its error, core-seconds predicted and measured): a run stopped mid-round resumes
that round, and a rerun replays the record (the estimates are deterministic given the data, and
the data given the spec and seed). A record made for another grid, sampling, seed or placement
rule is set aside (never deleted) and the rounds start again from the spec's grid.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Callable

import numpy as np

from contract.layout import refine_problem

from .costs import task_seconds
from .plan import Plan, make_plan
from .scheduler import Callbacks
from .spec import SweepSpec
from .store import DamagedRecord, Store

__all__ = ["REFINE_FILE", "refine_key", "recorded_rounds", "added_temperatures", "plan_of", "run_rounds", "analysis_estimator",
           "SharedEngine"]

REFINE_FILE = "refine.json"


def refine_key(spec: SweepSpec) -> str:
    """What the rounds depend on: the grid, sizes, sampling, seed, target and points per round
    (not precision, max_rounds or budget, which only decide where they stop)."""
    basis = spec.to_dict()
    basis = {"sweep": {k: basis["sweep"][k] for k in ("seed", "lattice_sizes", "temperatures")},
             "sampling": basis["sampling"],
             "refine": {k: basis["refine"][k] for k in ("target", "points_per_round")}}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def _read(store: Store, spec: SweepSpec, set_aside: bool = False) -> dict | None:
    """OUT/refine.json if it was made for this spec; with ``set_aside``, one that was not (or is
    damaged) is moved to ``_damaged/`` so that the rounds start again."""
    if spec.refine is None or not store.exists():
        return None
    try:
        record = store.read_json(REFINE_FILE, refine_problem)
    except DamagedRecord:
        record = {}
    if record is not None and record.get("key") != refine_key(spec):
        if set_aside:
            store.set_aside(REFINE_FILE)
        return None
    return record


def recorded_rounds(store: Store, spec: SweepSpec) -> list[dict]:
    """The rounds OUT/refine.json records for this spec (empty: none, or made for another)."""
    record = _read(store, spec)
    return list(record["rounds"]) if record else []


def added_temperatures(rounds: list[dict]) -> dict[int, list[float]]:
    """Every temperature the rounds added, by lattice size."""
    added: dict[int, set[float]] = {}
    for r in rounds:
        for L, temps in r.get("added", {}).items():
            added.setdefault(int(L), set()).update(temps)
    return {L: sorted(t) for L, t in added.items()}


def plan_of(spec: SweepSpec, store: Store) -> Plan:
    """The plan of OUT as it stands: the grid, the temperatures its rounds added, and the flows
    once the rounds are over (what ``rgsweep status`` and the cost comparisons read)."""
    record = _read(store, spec)
    if record is None:
        return make_plan(spec, with_flows=spec.refine is None)
    return make_plan(spec, added_temperatures(record["rounds"]), with_flows=record.get("stopped") is not None)


class SharedEngine:
    """One backend for all rounds: started by the first round, kept between rounds (Ray starts
    once), closed by :meth:`shutdown` or by an aborted round."""

    def __init__(self, factory: Callable):
        self.factory, self.engine = factory, None

    def __call__(self) -> "SharedEngine":
        return self

    def start(self) -> None:
        if self.engine is None:
            engine = self.factory()
            engine.start()
            self.engine = engine

    def __getattr__(self, name):  # submit, wait, outcome, payload, max_in_flight
        return getattr(self.engine, name)

    def close(self, abort: bool = False) -> None:
        if abort:
            self.shutdown(abort=True)

    def shutdown(self, abort: bool = False) -> None:
        if self.engine is not None:
            engine, self.engine = self.engine, None
            engine.close(abort=abort)


def _measured(store: Store, plan: Plan) -> dict[str, float]:
    """CPU seconds the plan's committed tasks recorded, by kind."""
    spent: dict[str, float] = {}
    kinds = {t.id: t.kind for t in plan}
    for task_id, manifest in store.manifests().items():
        if task_id not in kinds:
            continue
        try:
            cost = json.loads(store.read_manifest(manifest)).get("cost") or {}
        except (OSError, ValueError, AttributeError):
            continue
        spent[kinds[task_id]] = spent.get(kinds[task_id], 0.0) + float(cost.get("cpu_s", 0.0))
    return spent


def _stop_reason(spec: SweepSpec, found: dict, r: int, spent_s: float, next_s: float, n_new: int) -> str | None:
    ref = spec.refine
    if found["error"] <= ref.precision:
        return (f"precision reached: {found['what']} = {found['value']:.5f} +- {found['error']:.5f} "
                f"<= {ref.precision:g}")
    if r + 1 >= ref.max_rounds:
        return f"round limit: {ref.max_rounds} round(s) run, error {found['error']:.5f} > {ref.precision:g}"
    if n_new == 0:
        return "no new temperature could be placed near the estimate"
    if spent_s + next_s > ref.budget_core_hours * 3600:
        return (f"budget: the next round would bring the predicted cost to {(spent_s + next_s) / 3600:.3g} "
                f"core-hours > budget_core_hours = {ref.budget_core_hours:g}")
    return None


def run_rounds(spec: SweepSpec, store: Store, run_plan: Callable[[Plan], bool], callbacks: Callbacks,
               estimate_target: Callable[[str, int], tuple[dict, dict[int, list[float]]]]) -> dict:
    """Run the rounds of ``spec.refine`` on ``store`` (whose lock the caller holds).

    ``run_plan(plan)`` runs a plan's missing tasks and says whether all succeeded;
    ``estimate_target(out, round)`` returns (the estimate, the proposed temperatures by L).
    Returns the final record (also in OUT/refine.json)."""
    record = _read(store, spec, set_aside=True)
    if record is None:
        record = {"key": refine_key(spec), "target": spec.refine.target, "rounds": [{"round": 0, "added": {}}],
                  "stopped": None}
    record["stopped"] = None
    seconds_cache: dict[str, float] = {}
    while True:
        r = len(record["rounds"]) - 1
        added = added_temperatures(record["rounds"])
        plan = make_plan(spec, added, with_flows=False)
        n_temps = {L: len(set(spec.temperatures) | set(added.get(L, ()))) for L in spec.lattice_sizes}
        callbacks.note(f"refine round {r}: {sum(n_temps.values())} (L, T) points "
                       f"({', '.join(f'L={L}: {n}' for L, n in n_temps.items())})")
        t0 = time.perf_counter()
        if not run_plan(plan):
            record["stopped"] = {"round": r, "reason": "tasks failed: the rounds stop (rerun to retry them)"}
            break
        found, proposal = estimate_target(store.uri, r)
        seconds_cache.update(task_seconds(plan))
        spent = sum(seconds_cache[t.id] for t in plan)
        nxt = make_plan(spec, added_temperatures(record["rounds"] + [{"added": proposal}]), with_flows=False)
        new_tasks = [t for t in nxt if t.id not in seconds_cache]
        next_s = sum(task_seconds(nxt).get(t.id, 0.0) for t in new_tasks)
        measured = _measured(store, plan)
        record["rounds"][r].update({
            "what": found["what"], "estimate": found["value"], "error": found["error"],
            "parts": found["parts"], "temperatures": n_temps,
            "core_seconds_predicted": spent, "core_seconds_measured": sum(measured.values()),
            "sampling_core_seconds": measured.get("sample", 0.0),
            "estimate_s": time.perf_counter() - t0})
        reason = _stop_reason(spec, found, r, spent, next_s, len(new_tasks))
        shown = (f"{found['value']:.5f} +- {found['error']:.5f}" if np.isfinite(found["error"])
                 else f"not resolved yet (near {found['value']:.4f})")
        callbacks.note(f"refine round {r}: {found['what']} = {shown}; "
                       f"{spent / 3600:.3g} core-hours predicted so far"
                       + (f"; stop: {reason}" if reason else ""))
        if reason:
            record["stopped"] = {"round": r, "reason": reason}
            break
        record["rounds"].append({"round": r + 1, "added": {str(L): t for L, t in proposal.items() if t}})
        store.write_json(REFINE_FILE, _json_safe(record))  # the next round, before it runs
    store.write_json(REFINE_FILE, _json_safe(record))
    return record


def analysis_estimator(spec: SweepSpec) -> Callable[[str, int], tuple[dict, dict[int, list[float]]]]:
    """The target's estimate and the next temperatures from OUT's data (:mod:`analysis.refine`);
    round r's bootstrap draws from ``SeedSequence([seed, r])``, so a rerun gives the same."""
    from analysis.refine import estimate, propose
    from analysis.thermodynamics import load_histograms

    def run(out: str, r: int):
        hists = load_histograms(out)
        found = estimate(hists, spec.refine.target, np.random.default_rng([spec.seed, r]))
        return found, propose(hists, found, spec.refine.target, spec.refine.points_per_round)
    return run


def _json_safe(value):
    """inf and NaN (an estimate not available yet) as null: refine.json is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
