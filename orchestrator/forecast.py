"""A sweep's cost before it runs: core-seconds, memory, the critical path and the wall time on N
workers (``rgsweep validate --workers N``, ``rgsweep run --dry-run``, the progress ETA); and what
a finished run measured, beside what the model predicted.

The wall time comes from simulating the run's own scheduling on the plan's dependency graph:
N workers, each task started as soon as a worker is free and its dependencies are done, ready
tasks in the driver's order (:class:`orchestrator.scheduler.Scheduler`: longest remaining chain
first, :func:`ranks`), each taking its predicted core-seconds (:mod:`orchestrator.costs`). The critical path is the longest
chain of dependent tasks: no number of workers runs the sweep faster.
"""

from __future__ import annotations

import heapq

from .costs import load_model, predict, task_seconds
from .plan import Plan, Task, make_plan
from .resources import task_estimate

__all__ = ["STARTUP_S", "task_seconds", "critical_path", "simulate_wall", "forecast", "measured_costs",
           "compare", "duration", "worker_counts", "ranks", "estimate_lines"]

#: Seconds before the first task runs, measured here: Ray's start (6-10 s) and loading the
#: cached kernels, or the process pool's start. Added to the simulated wall time.
STARTUP_S = {"ray": 9.0, "process": 3.0, "serial": 1.5}


def worker_counts(backend: str, workers: int | None, cores: int) -> list[int]:
    """The worker counts a forecast shows: 1 for the serial backend; else 2 and ``workers``
    (default: this machine's cores)."""
    if backend == "serial":
        return [1]
    return sorted({2, workers or cores})


def critical_path(plan, seconds: dict[str, float], done: set[str] = frozenset()) -> float:
    """The longest chain of dependent tasks still to run, in seconds (``plan``: tasks in
    dependency order; a task without a prediction counts 0)."""
    finish: dict[str, float] = {}
    for task in plan:  # plan order is dependency order
        start = max((finish.get(d, 0.0) for d in task.deps), default=0.0)
        finish[task.id] = start + (0.0 if task.id in done else seconds.get(task.id, 0.0))
    return max(finish.values(), default=0.0)


def ranks(tasks: list[Task], seconds: dict[str, float]) -> dict[str, float]:
    """Each task's rank: its seconds plus the largest rank among the tasks that depend on it
    (the longest chain from its start to the end of the sweep): the driver's priority."""
    children: dict[str, list[str]] = {}
    for t in tasks:
        for d in t.deps:
            children.setdefault(d, []).append(t.id)
    rank: dict[str, float] = {}
    for t in reversed(tasks):  # dependents come after their dependencies in plan order
        rank[t.id] = seconds.get(t.id, 0.0) + max((rank[c] for c in children.get(t.id, ())), default=0.0)
    return rank


def simulate_wall(plan: Plan, seconds: dict[str, float], workers: int, done: set[str] = frozenset(),
                  priority: dict[str, float] | None = None) -> float:
    """Makespan of the tasks not in ``done`` on ``workers`` workers, scheduled as the driver does
    (ready tasks by ``priority``, default their :func:`ranks`; ties first in, first out)."""
    todo = [t for t in plan if t.id not in done]
    workers = max(1, int(workers))
    priority = ranks(todo, seconds) if priority is None else priority
    waiting = {t.id: {d for d in t.deps if d not in done} for t in todo}
    children: dict[str, list[Task]] = {}
    for t in todo:
        for d in waiting[t.id]:
            children.setdefault(d, []).append(t)
    ready: list[tuple[float, int, Task]] = []
    order = 0

    def release(task: Task) -> None:
        nonlocal order
        heapq.heappush(ready, (-priority.get(task.id, 0.0), order, task))
        order += 1

    for t in todo:
        if not waiting[t.id]:
            release(t)
    running: list[tuple[float, int, str]] = []  # (finish time, tie-break, id)
    now, started = 0.0, 0
    while ready or running:
        while ready and len(running) < workers:
            task = heapq.heappop(ready)[2]
            heapq.heappush(running, (now + seconds[task.id], started, task.id))
            started += 1
        now, _, tid = heapq.heappop(running)
        for child in children.get(tid, []):
            waiting[child.id].discard(tid)
            if not waiting[child.id]:
                release(child)
    return now


def forecast(plan: Plan, workers: list[int], done: set[str] = frozenset(), backend: str = "ray",
             model: dict | None = None, seconds: dict[str, float] | None = None) -> dict:
    """What running the plan's tasks not in ``done`` would cost: a JSON-ready summary
    (``seconds``: the tasks' predictions, if already made with ``model``)."""
    seconds = task_seconds(plan, model) if seconds is None else seconds
    by_id = plan.by_id()
    todo = [t for t in plan if t.id not in done]
    by_kind: dict[str, dict] = {}
    for t in todo:
        entry = by_kind.setdefault(t.kind, {"tasks": 0, "core_seconds": 0.0, "largest_task_s": 0.0})
        entry["tasks"] += 1
        entry["core_seconds"] += seconds[t.id]
        entry["largest_task_s"] = max(entry["largest_task_s"], seconds[t.id])
    memory = sorted((task_estimate(t, by_id).memory_bytes for t in todo), reverse=True)
    most = max(workers, default=1)
    startup = STARTUP_S.get(backend, STARTUP_S["ray"]) if todo else 0.0
    return {
        "tasks": len(todo), "tasks_done": len(plan) - len(todo),
        "core_seconds": sum(seconds[t.id] for t in todo),
        "core_hours": sum(seconds[t.id] for t in todo) / 3600.0,
        "by_kind": by_kind,
        "peak_memory_bytes": memory[0] if memory else 0.0,  # of one worker: the largest task
        "peak_memory_all_workers_bytes": sum(memory[:most]),  # the largest tasks at once, at most
        "critical_path_s": critical_path(plan, seconds, done),
        "startup_s": startup,
        "predicted_wall_s": {str(n): startup + simulate_wall(plan, seconds, n, done) for n in workers},
        "disk_bytes": sum(task_estimate(t, by_id).disk_bytes for t in todo),
    }


def measured_costs(out: str) -> list[tuple[Task, dict, dict[str, Task]]]:
    """(task, its manifest's recorded cost, the plan by id) for every task of OUT's recorded
    spec whose manifest records a cost (runs before costs were recorded have none)."""
    import json

    from .refine import plan_of
    from .spec import parse_spec
    from .store import Store

    store = Store(out)
    record = store.read_json("sweep.json") if store.exists() else None
    if record is None:
        raise FileNotFoundError(f"{out} is not an rgsweep output folder (no sweep.json)")
    plan = plan_of(parse_spec(record["spec"]), store)  # with the temperatures of [refine] rounds
    by_id = plan.by_id()
    rows = []
    for task_id, manifest in store.manifests().items():
        if task_id not in by_id:
            continue
        try:
            cost = json.loads(store.read_manifest(manifest)).get("cost")
        except (OSError, ValueError, AttributeError):  # damaged: `rgsweep status` reports it
            continue
        if isinstance(cost, dict) and "cpu_s" in cost:
            rows.append((by_id[task_id], cost, by_id))
    return rows


def compare(rows, model: dict | None = None) -> dict[str, dict]:
    """Per kind: tasks, measured and predicted core-seconds and their ratio (from
    :func:`measured_costs` rows)."""
    model = model or load_model()
    table: dict[str, dict] = {}
    for task, cost, by_id in rows:
        entry = table.setdefault(task.kind, {"tasks": 0, "measured_s": 0.0, "predicted_s": 0.0})
        entry["tasks"] += 1
        entry["measured_s"] += cost["cpu_s"]
        entry["predicted_s"] += predict(task, by_id, model)
    for entry in table.values():
        entry["ratio"] = entry["predicted_s"] / entry["measured_s"] if entry["measured_s"] else float("nan")
    return table


def duration(seconds: float) -> str:
    """A duration for people: "under a second", "40 s", "12 min", "3.4 h"."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_lines(plan: Plan, summary: dict, workers: list[int]) -> list[str]:
    """What ``rgsweep validate`` and ``--dry-run`` print of a :func:`forecast` summary."""
    if not summary["tasks"]:
        return ["  nothing to run: every task is done"]
    model = load_model()
    when = model.get("calibrated", {}).get("at", "?")[:10]
    lines = [f"  predicted cost: {summary['core_hours']:.3g} core-hours for {summary['tasks']} task(s) "
             f"(cost model calibrated {when} by `rgsweep bench sweep`; CPU seconds on a busy machine)"]
    for kind in ("sample", "train", "flow"):
        entry = summary["by_kind"].get(kind)
        if entry:
            lines.append(f"    {kind:<7}{entry['tasks']:>6} tasks {entry['core_seconds'] / 3600:>9.3g} core-h"
                         f"   largest task {duration(entry['largest_task_s'])}")
    walls = ", ".join(f"{duration(summary['predicted_wall_s'][str(n)])} on {n} worker{'s' * (n > 1)}"
                      for n in workers)
    lines.append(f"  critical path {duration(summary['critical_path_s'])} (the longest chain of dependent "
                 f"tasks: no number of workers is faster); predicted wall time {walls} "
                 f"(the task graph scheduled as the driver does, plus ~{summary['startup_s']:.0f} s start-up)")
    return lines
