"""``[refine]``: an adaptive sweep, run as rounds of temperatures chosen from the data.

Round 0 is the spec's grid. After each round the target is estimated from the dataset
(:func:`analysis.refine.estimate`) and the next round's temperatures placed where they shrink
its error most (:func:`analysis.refine.propose`); only the new sample tasks run (ids are content
hashes: nothing done is redone). The rounds stop when the error is at most ``precision``, after
``max_rounds`` rounds, when the next round would take the whole sweep's predicted cost (training
and flows at those temperatures included) past ``budget_core_hours`` (the cost model's figure,
so that the same spec stops at the same round on every machine), or when no new temperature can
be placed. Training and flows run once, after the last round, on every temperature.

``OUT/refine.json`` records every round before it runs (its temperatures) and after (the
estimate with its error, the sweep's predicted cost, the sampling core-seconds measured): a run
stopped mid-round resumes that round, and a rerun replays the record (the estimates are
deterministic given the data, and the data given the spec and seed); a recorded round that a
lowered ``max_rounds`` or budget no longer allows is dropped. A record made for another grid,
sampling, seed or placement rule is set aside (never deleted) and the rounds start again.
"""

from __future__ import annotations

import json
import time
from typing import Callable

import numpy as np

from contract.layout import refine_key as layout_refine_key
from contract.layout import refine_problem

from .costs import CostModelError, task_seconds
from .plan import Plan, make_plan
from .scheduler import Callbacks
from .spec import SweepSpec
from .store import DamagedRecord, Store

__all__ = ["REFINE_FILE", "refine_key", "added_temperatures", "plan_of", "preflight", "run_rounds", "analysis_estimator",
           "SharedEngine"]

REFINE_FILE = "refine.json"


def refine_key(spec: SweepSpec) -> str:
    """What the rounds depend on (:func:`contract.layout.refine_key`)."""
    return layout_refine_key(spec.to_dict())


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


def added_temperatures(rounds: list[dict]) -> dict[int, list[float]]:
    """Every temperature the rounds added, by lattice size."""
    added: dict[int, set[float]] = {}
    for r in rounds:
        for L, temps in r.get("added", {}).items():
            added.setdefault(int(L), set()).update(temps)
    return {L: sorted(t) for L, t in added.items()}


def plan_of(spec: SweepSpec, store: Store, with_flows: bool | None = None) -> Plan:
    """The plan of OUT as it stands: the grid, the temperatures its rounds added, and the flows
    once the rounds are over, or as ``with_flows`` says (what ``rgsweep status``, the resource
    check and the cost comparisons read)."""
    record = _read(store, spec)
    if record is None:
        return make_plan(spec, with_flows=spec.refine is None if with_flows is None else with_flows)
    flows = record.get("stopped") is not None if with_flows is None else with_flows
    return make_plan(spec, added_temperatures(record["rounds"]), with_flows=flows)


def preflight(spec: SweepSpec) -> list[str]:
    """Why the rounds cannot start (one line each): the cost model, which the budget needs, is
    unreadable, or the grid alone (training and flows included) is predicted past
    ``budget_core_hours``. (Recorded rounds past a lowered budget are dropped by the rounds.)"""
    try:
        cost = sum(task_seconds(make_plan(spec)).values())  # the grid, training and flows included
    except CostModelError as err:
        return [f"[refine] needs the cost model for refine.budget_core_hours: {err}"]
    if cost > spec.refine.budget_core_hours * 3600:
        return [f"refine.budget_core_hours = {spec.refine.budget_core_hours:g} is below the predicted cost of the "
                f"sweep before any round adds a temperature ({cost / 3600:.3g} core-hours, training and flows "
                "included): raise it or thin the grid"]
    return []


class SharedEngine:
    """One backend for all rounds: started by the first round, kept between rounds (Ray starts
    once), closed by :meth:`shutdown` or by an aborted round."""

    def __init__(self, factory: Callable):
        self.factory, self.engine = factory, None

    def __call__(self) -> "SharedEngine":
        return self

    def start(self) -> None:
        if self.engine is None:
            self.engine = self.factory()  # before start(): an interrupted start is closed too
            self.engine.start()

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


def _stop_reason(spec: SweepSpec, found: dict, r: int, next_s: float | None, n_new: int) -> str | None:
    ref = spec.refine
    if found["error"] <= ref.precision:
        return (f"precision reached: {found['what']} = {found['value']:.5f} +- {found['error']:.5f} "
                f"<= {ref.precision:g}")
    if r + 1 >= ref.max_rounds:
        return f"round limit: {ref.max_rounds} round(s) run, error {found['error']:.5f} > {ref.precision:g}"
    if n_new == 0:
        return "no new temperature could be placed near the estimate"
    if next_s is None:
        return "the cost model cannot be read, so the budget cannot be checked"
    if next_s > ref.budget_core_hours * 3600:
        return (f"budget: the next round would bring the sweep's predicted cost to {next_s / 3600:.3g} "
                f"core-hours > budget_core_hours = {ref.budget_core_hours:g}")
    return None


def _sweep_seconds(spec: SweepSpec, added: dict) -> float | None:
    """Predicted core-seconds of the whole sweep at these temperatures (training and flows
    included); None without a cost model."""
    try:
        return sum(task_seconds(make_plan(spec, added)).values())
    except CostModelError:
        return None


def _samples(plan: Plan) -> Plan:
    return Plan(tasks=tuple(t for t in plan if t.kind == "sample"))


def run_rounds(spec: SweepSpec, store: Store, run_plan: Callable[[Plan], bool], callbacks: Callbacks,
               estimate_target: Callable[[str, int], tuple[dict, dict[int, list[float]]]]) -> dict:
    """Run the rounds of ``spec.refine`` on ``store`` (whose lock the caller holds): the sample
    tasks of each round only; the caller runs the whole plan (training, flows) after them.

    ``run_plan(plan)`` runs a plan's missing tasks and says whether all succeeded;
    ``estimate_target(out, round)`` returns (the estimate, the proposed temperatures by L).
    Returns the final record (also in OUT/refine.json)."""
    ref = spec.refine
    record = _read(store, spec, set_aside=True)
    if record is None:
        record = {"key": refine_key(spec), "target": ref.target, "rounds": [{"round": 0, "added": {}}],
                  "stopped": None}
    record["stopped"] = None
    del record["rounds"][ref.max_rounds:]  # a lower max_rounds than when they were recorded
    while True:
        r = len(record["rounds"]) - 1
        added = added_temperatures(record["rounds"])
        if r > 0 and "estimate" not in record["rounds"][r]:  # recorded, not run: still within budget?
            cost = _sweep_seconds(spec, added)
            if cost is None or cost > ref.budget_core_hours * 3600:
                record["rounds"].pop()  # round r - 1 is rerun (nothing to do) and stops on the budget
                continue
        n_temps = {L: len(set(spec.temperatures) | set(added.get(L, ()))) for L in spec.lattice_sizes}
        callbacks.note(f"refine round {r}: {sum(n_temps.values())} (L, T) points "
                       f"({', '.join(f'L={L}: {n}' for L, n in n_temps.items())})")
        t0 = time.perf_counter()
        plan = _samples(make_plan(spec, added, with_flows=False))
        if not run_plan(plan):
            record["stopped"] = {"round": r, "reason": "sample tasks failed: the rounds stop (rerun to retry them)"}
            break
        found, proposal = estimate_target(store.uri, r)
        now_s = _sweep_seconds(spec, added)
        nxt = {L: sorted(set(added.get(L, ())) | set(t)) for L, t in proposal.items()}
        next_s = _sweep_seconds(spec, nxt)
        new = [t for t in _samples(make_plan(spec, nxt, with_flows=False)) if t.id not in {p.id for p in plan}]
        measured = _measured(store, plan)
        record["rounds"][r].update({
            "what": found["what"], "estimate": found["value"], "error": found["error"],
            "parts": found["parts"], "temperatures": n_temps,
            "sweep_core_seconds_predicted": now_s, "sampling_core_seconds": measured.get("sample", 0.0),
            "estimate_s": time.perf_counter() - t0})
        reason = _stop_reason(spec, found, r, next_s, len(new))
        shown = (f"{found['value']:.5f} +- {found['error']:.5f}" if np.isfinite(found["error"])
                 else f"not resolved yet (near {found['value']:.4f})")
        cost = f"; the sweep is predicted at {now_s / 3600:.3g} core-hours" if now_s is not None else ""
        callbacks.note(f"refine round {r}: {found['what']} = {shown}{cost}" + (f"; stop: {reason}" if reason else ""))
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
