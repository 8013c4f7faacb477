"""``rgsweep run SPEC --dry-run``: what a run would do, against what OUT already holds, writing
nothing (no lock, no records, no migration); and ``rgsweep validate``'s report, which is the same
forecast for a spec alone.

Every task of the plan is *done* (its manifest is in OUT) or *new*; every committed task of OUT
that the plan does not contain is *stale* (a result of an earlier spec or code version: kept on
disk, never read, never recomputed). Per kind and L: the task counts and, for the new tasks, the
largest task's memory, the results' size on disk (:mod:`orchestrator.resources`) and the
predicted core-seconds (:mod:`orchestrator.costs`); then the whole forecast of the new tasks
(:mod:`orchestrator.forecast`). Presence is
checked by listing only; ``rgsweep run`` verifies sizes and SHA-256 before it skips anything.
"""

from __future__ import annotations

import json
from collections import Counter

from . import forecast, resources
from .costs import CostModelError
from .plan import Plan, make_plan
from .resources import fmt_bytes, machine, task_estimate
from .store import Store

__all__ = ["dry_run", "done_ids", "task_states", "validate_report"]


def task_states(plan: Plan, store: Store) -> tuple[dict[str, str], Counter]:
    """({task id: "done" | "new"} for the plan, Counter of stale committed tasks by kind)."""
    committed = store.manifests() if store.exists() else {}
    states = {t.id: "done" if t.id in committed else "new" for t in plan}
    stale = Counter(m.kind for task_id, m in committed.items() if task_id not in states)
    return states, stale


def done_ids(plan: Plan, store: Store) -> set[str]:
    """The plan's tasks whose manifests OUT holds."""
    return {tid for tid, state in task_states(plan, store)[0].items() if state == "done"}


def dry_run(plan: Plan, out: str, workers: int | None = None, backend: str = "ray") -> list[str]:
    """The lines ``--dry-run`` prints (wall time predicted on ``workers``, default all cores)."""
    store = Store(out)
    states, stale = task_states(plan, store)
    try:
        seconds, problem = forecast.task_seconds(plan), None  # once: the column and the forecast
    except CostModelError as err:
        seconds, problem = {}, f"  predicted cost: not available: {err}"
    by_id = plan.by_id()
    groups: dict[tuple[str, int, int], list] = {}
    for task in plan:  # training variants: one row per hidden-layer size (seeds counted in it)
        groups.setdefault((task.kind, task.L, getattr(task.config, "n_hidden", 0)), []).append(task)
    new = [t for t in plan if states[t.id] == "new"]
    lines = [f"dry run of {len(plan)} task(s) against {store.uri}"
             + ("" if store.exists() else " (does not exist yet)") + ": "
             f"{len(plan) - len(new)} done, {len(new)} new, {sum(stale.values())} stale; nothing written",
             f"  {'kind':<7}{'L':>6}{'n_h':>7}{'done':>7}{'new':>6}  {'T (new)':<30}{'memory/task':>12}"
             f"{'disk (new)':>12}{'core-s (new)':>14}"]
    for (kind, L, n_h), tasks in sorted(groups.items(), key=lambda kv: (
            ["sample", "train", "flow"].index(kv[0][0]), kv[0][1], kv[0][2])):
        todo = [t for t in tasks if states[t.id] == "new"]
        est = [task_estimate(t, by_id) for t in todo]
        temps = sorted({round(t.T, 6) for t in todo if t.T == t.T})  # not the pooled RBM's NaN
        shown = ", ".join(f"{x:g}" for x in temps[:3]) + (f" ... ({len(temps)} T)" if len(temps) > 3 else "")
        lines.append(f"  {kind:<7}{L:>6}{n_h or '':>7}{len(tasks) - len(todo):>7}{len(todo):>6}  {shown:<30}"
                     f"{fmt_bytes(max(e.memory_bytes for e in est)) if est else '-':>12}"
                     f"{fmt_bytes(sum(e.disk_bytes for e in est)) if est else '-':>12}"
                     f"{f'{sum(seconds[t.id] for t in todo):.3g}' if todo and seconds else '-':>14}")
    if stale:
        lines.append("  stale (kept, not read): " + ", ".join(f"{n} {k}" for k, n in sorted(stale.items())))
    done = {tid for tid, state in states.items() if state == "done"}
    n = forecast.worker_counts(backend, workers, machine(None).cores)
    lines += [problem] if problem else forecast.estimate_lines(
        plan, forecast.forecast(plan, n, done, backend=backend, seconds=seconds), n)
    lines.append("  `rgsweep status OUT` lists the tasks one by one")
    return lines


def validate_report(spec, spec_path, out_dir: str | None, backend: str, workers_arg: int | None,
                    as_json: bool) -> tuple[list[str], str | None]:
    """What ``rgsweep validate`` prints (or its JSON object), or a one-line problem."""
    plan = make_plan(spec)
    out: list[str] = []
    done: set[str] = set()
    notes = []
    if spec.refine is not None:
        r = spec.refine
        notes.append(f"  [refine]: these are the grid's tasks (round 0); up to {r.max_rounds - 1} more round(s) "
                     f"sample {r.points_per_round} more temperature(s) per lattice size each; training and flows "
                     "run after the last round, on every temperature; the rounds stop before the sweep's "
                     f"predicted cost passes {r.budget_core_hours:g} core-hours")
    if out_dir is not None:
        store = Store(out_dir)
        if not store.exists() or store.read_json("sweep.json") is None:
            notes.append(f"  note: {out_dir} is not an rgsweep output folder yet: every task counts as new")
        done = done_ids(plan, store)
    workers = forecast.worker_counts(backend, workers_arg, resources.machine(None).cores)
    try:
        summary = forecast.forecast(plan, workers, done, backend=backend)
    except CostModelError as err:
        summary, notes = None, notes + [f"  predicted cost: not available: {err}"]
    if as_json:
        if summary is None:
            return [], notes[-1].strip()
        return [json.dumps({"spec": str(spec_path), "sweep": spec.name, "workers": workers, **summary},
                           indent=1, sort_keys=True)], None
    out.append(f"{spec_path}: valid sweep {spec.name!r}")
    out.append(f"  lattice sizes {list(spec.lattice_sizes)}, {len(spec.temperatures)} temperatures "
               f"in [{min(spec.temperatures):g}, {max(spec.temperatures):g}]")
    out.append(f"  tasks: {len(plan)} ({plan.count('sample')} sampling, {plan.count('train')} training, "
               f"{plan.count('flow')} flow)" + (f"; {len(done)} already done in {out_dir}" if out_dir else ""))
    out += notes + (forecast.estimate_lines(plan, summary, workers) if summary else [])
    by_id = plan.by_id()
    est = {t.id: resources.task_estimate(t, by_id) for t in plan}
    big = max(plan, key=lambda t: est[t.id].memory_bytes)
    out.append(f"  largest task: ~{resources.fmt_bytes(est[big.id].memory_bytes)} of memory ({big.kind} "
               f"L={big.L}{'' if big.kind == 'flow' else f' T={big.T:g}'}); results: "
               f"~{resources.fmt_bytes(sum(e.disk_bytes for e in est.values()))} on disk")
    here = resources.machine(None)  # looked up at call time (tests replace it)
    out += [f"  warning: on this machine, {p}" for p in resources.check(plan, list(plan), 1, here)]
    return out, None
