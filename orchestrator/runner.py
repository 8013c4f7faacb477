"""One run of a sweep: lock OUT, skip what is done, drive the scheduler, write what comes back.

The driver only submits and reduces (model: Ray's ``limit_pending_tasks.py``): at most
``backend.max_in_flight`` tasks are pending; a task is ready when its dependencies are done
(in this run or an earlier one); every result is written by the driver, atomically, the moment
it arrives, so an interrupted run loses only the tasks in flight.  A failed task leaves a
``failures`` row and its dependents are not attempted; the rest go on.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable

import pyarrow as pa

from contract.constants import CODE_VERSIONS
from contract.layout import plan_problem, sweep_problem
from contract.schemas import SCHEMA_VERSION, SCHEMAS

from . import __version__, refine, resources
from .backends import BACKENDS, make_backend
from .execute import PAYLOAD_TABLES, Outcome
from .forecast import ranks, task_seconds
from .migrate import migrate_layout
from .plan import Plan, Task, make_plan
from .scheduler import Backend, Callbacks, Scheduler
from .spec import SweepSpec
from .store import DamagedRecord, Store

__all__ = ["RunSummary", "run_sweep", "task_status", "sweep_record", "Interrupted", "Stop", "ResourceError",
           "check_resources"]


class ResourceError(ValueError):
    """The sweep would not fit the machine (memory or disk); one line per problem, nothing written."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Stop(BaseException):
    """Raised in the driver by a termination signal (the CLI turns SIGTERM into this)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Interrupted(Exception):
    """The run was stopped (SIGINT, SIGTERM) after committing ``summary.run`` tasks; the work
    in flight was killed, the lock released; rerunning the same command resumes."""

    def __init__(self, summary: "RunSummary", signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.summary, self.signum = summary, signum


@dataclass
class RunSummary:
    out: str
    total: int
    skipped: int = 0
    run: int = 0
    failed: list[tuple[Task, str]] = field(default_factory=list)
    blocked: list[Task] = field(default_factory=list)
    damaged: list[tuple[str, str, str]] = field(default_factory=list)  # (task id, why, moved to)
    rebuilt: list[tuple[str, str, str]] = field(default_factory=list)  # (record, why, moved to)
    migrated: dict = field(default_factory=dict)  # layout-1 L=<L> files: moved, set_aside, left
    wall_s: float = 0.0
    backend: str = ""
    refine: dict | None = None  # OUT/refine.json after the rounds of an adaptive sweep

    @property
    def exit_code(self) -> int:
        return 1 if (self.failed or self.blocked) else 0


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def sweep_record(spec: SweepSpec, previous: dict | None) -> dict:
    """``sweep.json``: the spec, versions and schema; earlier different specs kept in history."""
    history = list(previous.get("history", [])) if previous else []
    same = bool(previous) and previous.get("spec") == spec.to_dict()
    if previous and not same:
        history.append({"spec": previous.get("spec"), "recorded_at": previous.get("recorded_at")})
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return {
        "spec": spec.to_dict(),
        "schema_version": SCHEMA_VERSION,
        "recorded_at": previous.get("recorded_at", now) if same else now,
        "versions": {"rgsweep": __version__, "python": platform.python_version(),
                     **{d: _version(d) for d in ("numpy", "numba", "pyarrow", "ray", "scipy")}},
        "history": history,
    }


#: The task ids of the spec and code that last ran on OUT. The loaders read results of these
#: tasks only; finished tasks of an earlier spec or code version stay on disk (stale).
PLAN_FILE = "plan.json"


def plan_record(plan: Plan) -> dict:
    """``plan.json``: the current plan's task ids, with the versions that made them."""
    return {"schema_version": SCHEMA_VERSION, "code_versions": dict(CODE_VERSIONS),
            "task_ids": sorted(t.id for t in plan)}


def task_status(plan: Plan, store: Store, verify: bool = True) -> dict[str, list]:
    """Split the plan's tasks into done / damaged / failed (attempted, not done) / missing, and
    list committed tasks that the current spec no longer plans (stale: from an earlier spec)."""
    manifests = store.manifests()
    planned = {t.id for t in plan}
    # only the plan's tasks are verified: a stale manifest is reported, never touched
    damaged = store.verify({k: m for k, m in manifests.items() if k in planned}, full=verify)
    attempts = store.failure_attempts()
    status: dict[str, list] = {"done": [], "damaged": [], "failed": [], "missing": [], "stale": []}
    for task in plan:
        key = ("damaged" if task.id in damaged else "done" if task.id in manifests
               else "failed" if task.id in attempts else "missing")
        status[key].append(task)
    status["stale"] = [m for tid, m in manifests.items() if tid not in planned]
    status["reasons"] = damaged
    return status


def check_resources(plan: Plan, store: Store, backend: str, workers: int | None,
                    address: str | None) -> list[str]:
    """The tasks of ``plan`` not yet committed in ``store`` against this machine (read-only).

    Serial runs one task at a time; the process pool and embedded Ray run ``workers`` (default:
    all cores) at once. On a cluster (``address``) the tasks run elsewhere: the disk only."""
    done = set(store.manifests()) if store.exists() else set()
    todo = [t for t in plan if t.id not in done]
    here = resources.machine(store.root if store.local else None)
    n = 1 if backend == "serial" else (workers or here.cores)
    return resources.check(plan, todo, n, here, memory=address is None)


def _read_or_set_aside(store: Store, name: str, problem, summary: RunSummary) -> dict | None:
    """A run rebuilds damaged records from its own spec: the damaged file is moved aside."""
    try:
        return store.read_json(name, problem)
    except DamagedRecord as err:
        summary.rebuilt.append((name, str(err), store.set_aside(name)))
        return None


def _failure_table(task: Task, outcome: Outcome, attempt: int) -> pa.Table:
    row = {"task_id": [task.id], "L": [task.L], "T": [task.T], "kind": [task.kind],
           "error": [outcome.error], "traceback": [outcome.traceback], "attempt": [attempt],
           "failed_at": [_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")]}
    return pa.table(row, schema=SCHEMAS["failures"])


class _StoreSink:
    """The scheduler's sink: commits to the store, records failures, reads earlier payloads."""

    def __init__(self, store: Store, plan: Plan):
        self.store, self.by_id = store, plan.by_id()
        self.attempts = store.failure_attempts()

    def commit(self, task: Task, outcome: Outcome) -> None:
        self.store.write_task(task.kind, task.L, task.T, task.id, outcome.parts,
                              cost={"wall_s": outcome.wall_s, "cpu_s": outcome.cpu_s,
                                    "phases": outcome.phases})

    def fail(self, task: Task, outcome: Outcome) -> None:
        attempt = self.attempts.get(task.id, 0) + 1
        self.store.write_failure(task.L, task.id, _failure_table(task, outcome, attempt))

    def load(self, task_id: str) -> dict:
        L = self.by_id[task_id].L
        return {name: self.store.read_part(name, L, task_id) for name in PAYLOAD_TABLES}


def default_out(spec: SweepSpec) -> str:
    """``results/<sweep.name>``: where a run writes when no output is given."""
    return os.path.join("results", spec.name)


def arguments_problem(backend: str, workers, address: str | None) -> str | None:
    """Why a run cannot start with these settings (one line naming the option), or None."""
    if backend not in BACKENDS:
        return f"backend (--backend) must be one of {', '.join(BACKENDS)}, got {backend!r}"
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        return f"workers (--workers) must be an integer >= 1, got {workers!r}"
    if address and backend != "ray":
        return f"an address (--address) needs backend ray, got {backend!r}"
    return None


def run_sweep(spec: SweepSpec, out: str, backend: str = "ray", workers: int | None = None,
              address: str | None = None, callbacks: Callbacks | None = None, verify: bool = True,
              check: bool = True) -> RunSummary:
    """Run every task of ``spec`` not yet done in ``out``; return what happened.

    ``callbacks`` hears when the skip-check is done (``started``), when the backend is up
    (``ready``) and after each task (``finished``); see :class:`~orchestrator.scheduler.Callbacks`.
    ``verify`` hashes every committed part before trusting it (else sizes only).
    ``check`` compares the memory and disk the tasks to run need with the machine first and
    raises :class:`ResourceError`, before anything is written, when they do not fit.
    Raises :class:`~orchestrator.lock.LockError` if another live driver holds ``out``.
    """
    t0 = time.perf_counter()
    store = Store(out)
    # rounds: as far as recorded, flows included (they run after the last round)
    plan = make_plan(spec) if spec.refine is None else refine.plan_of(spec, store, with_flows=True)
    if check:
        problems = check_resources(plan, store, backend, workers, address)
        problems += refine.preflight(spec) if spec.refine is not None else []
        if problems:
            raise ResourceError(problems)
    store.acquire_lock()
    summary = RunSummary(out=store.uri, total=len(plan), backend=backend)
    factory = lambda: make_backend(backend, workers, address)  # noqa: E731
    try:
        if spec.refine is None:
            _run_locked(plan, spec, store, factory, callbacks or Callbacks(), verify, summary)
        else:
            _run_refined(spec, store, factory, callbacks or Callbacks(), verify, summary)
    except (KeyboardInterrupt, Stop) as err:
        summary.wall_s = time.perf_counter() - t0
        raise Interrupted(summary, getattr(err, "signum", signal.SIGINT)) from None
    finally:
        store.release_lock()
    summary.wall_s = time.perf_counter() - t0
    return summary


def _predicted(plan: Plan, todo: list[Task]) -> dict[str, float]:
    """Predicted core-seconds of the tasks to run, for the progress ETA (empty if the cost model
    cannot be read: progress then counts tasks)."""
    try:
        seconds = task_seconds(plan)
        return {t.id: seconds[t.id] for t in todo}
    except Exception:  # noqa: BLE001 - a broken cost model must never stop a run
        return {}


def _run_locked(plan: Plan, spec: SweepSpec, store: Store, backend: Callable[[], Backend],
                callbacks: Callbacks, verify: bool, summary: RunSummary) -> None:
    store.write_json("sweep.json", sweep_record(spec, _read_or_set_aside(store, "sweep.json",
                                                                         sweep_problem, summary)))
    record = plan_record(plan)
    if _read_or_set_aside(store, PLAN_FILE, plan_problem, summary) != record:
        store.write_json(PLAN_FILE, record)  # a rerun of the same spec writes nothing
    store.clean_temporaries()
    summary.migrated = migrate_layout(store)
    planned = {t.id for t in plan}
    # only the plan's tasks: manifests of earlier specs are stale results, never moved
    manifests = {k: m for k, m in store.manifests().items() if k in planned}
    for task_id, reason in store.verify(manifests, full=verify).items():
        summary.damaged.append((task_id, reason, store.quarantine(manifests.pop(task_id))))
    done = set(manifests)
    todo = [t for t in plan if t.id not in done]
    summary.skipped = len(plan) - len(todo)
    predicted = _predicted(plan, todo)
    callbacks.planned(todo, predicted)
    callbacks.started(len(todo))
    if not todo:
        return
    scheduler, engine = Scheduler(todo, done, priority=ranks(todo, predicted)), backend()
    aborted = True  # until the loop ends normally: an interrupt or a driver error kills the work in flight
    try:
        engine.start()
        callbacks.ready()
        scheduler.run(engine, _StoreSink(store, plan), callbacks)
        aborted = False
    finally:  # the counts first: a second interrupt during close must not lose them
        summary.run, summary.failed, summary.blocked = scheduler.run_count, scheduler.failed, scheduler.blocked
        engine.close(abort=aborted)


def _run_refined(spec: SweepSpec, store: Store, backend: Callable[[], Backend], callbacks: Callbacks,
                 verify: bool, summary: RunSummary) -> None:
    """The rounds of ``[refine]`` (:mod:`orchestrator.refine`) on one backend, then the whole
    plan (training and flows on every temperature)."""
    engine = refine.SharedEngine(backend)

    def run_plan(plan: Plan) -> bool:
        part = RunSummary(out=summary.out, total=len(plan), backend=summary.backend)
        try:
            _run_locked(plan, spec, store, engine, callbacks, verify, part)
        finally:
            summary.run += part.run
            for name in ("failed", "blocked", "damaged", "rebuilt"):
                getattr(summary, name).extend(getattr(part, name))
            summary.total = len(plan)
        return not (part.failed or part.blocked)

    aborted = True
    try:
        summary.refine = refine.run_rounds(spec, store, run_plan, callbacks, refine.analysis_estimator(spec))
        run_plan(refine.plan_of(spec, store))
        aborted = False
    finally:
        summary.skipped = max(summary.total - summary.run, 0)
        engine.shutdown(abort=aborted)
