"""``rgsweep run SPEC --dry-run``: what a run would do, against what OUT already holds, writing
nothing (no lock, no records, no migration).

Every task of the plan is *done* (its manifest is in OUT) or *new*; every committed task of OUT
that the plan does not contain is *stale* (a result of an earlier spec or code version: kept on
disk, never read, never recomputed). Per kind and L: the task counts and, for the new tasks, the
largest task's memory, the results' size on disk (:mod:`orchestrator.resources`) and the
predicted core-seconds (:mod:`orchestrator.costs`); then the whole forecast of the new tasks
(:mod:`orchestrator.forecast`). Presence is
checked by listing only; ``rgsweep run`` verifies sizes and SHA-256 before it skips anything.
"""

from __future__ import annotations

from collections import Counter

from . import forecast
from .costs import CostModelError
from .plan import Plan
from .resources import fmt_bytes, machine, task_estimate
from .store import Store

__all__ = ["dry_run", "task_states"]


def task_states(plan: Plan, store: Store) -> tuple[dict[str, str], Counter]:
    """({task id: "done" | "new"} for the plan, Counter of stale committed tasks by kind)."""
    committed = store.manifests() if store.exists() else {}
    states = {t.id: "done" if t.id in committed else "new" for t in plan}
    stale = Counter(m.kind for task_id, m in committed.items() if task_id not in states)
    return states, stale


def dry_run(plan: Plan, out: str, workers: int | None = None, backend: str = "ray") -> list[str]:
    """The lines ``--dry-run`` prints (wall time predicted on ``workers``, default all cores)."""
    store = Store(out)
    states, stale = task_states(plan, store)
    try:
        seconds, problem = forecast.task_seconds(plan), None
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
        temps = sorted({round(t.T, 6) for t in todo}) if kind != "flow" else []
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
        plan, forecast.forecast(plan, n, done, backend=backend), n)
    lines.append("  `rgsweep status OUT` lists the tasks one by one")
    return lines
