"""Run one task anywhere: the same pure function on every backend.

:func:`run_task` is what a Ray worker, a pool process or the driver itself calls.  It imports
``workers`` lazily (so the orchestrator imports without numba), runs the task's physics, and
turns the worker's plain columns into Arrow tables validated against the explicit schemas.
Exceptions never escape: they come back as an :class:`Outcome` carrying the error and its
traceback, so every backend reports failures the same way.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .plan import Task
from contract.schemas import SCHEMAS, TASK_TABLES
from contract.timing import run_phases
from .store import encode_part

__all__ = ["PAYLOAD_TABLES", "payload_of", "FAULT_ENV", "InjectedFault", "Outcome", "run_task", "warmup", "to_arrow", "limit_threads"]

#: Worker processes compute in one BLAS/OpenMP thread: parallelism comes from tasks.
THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                     "NUMBA_NUM_THREADS")}


#: Fault injection for tests and drills: comma-separated task ids that raise instead of running.
FAULT_ENV = "RGSWEEP_FAIL_TASKS"


class InjectedFault(RuntimeError):
    """Raised by a task named in ``$RGSWEEP_FAIL_TASKS`` (fault-tolerance tests and drills)."""


def limit_threads():
    """Pin math libraries to one thread in this process; returns the limiter (``.restore_original_limits()``).

    Environment variables cover libraries not yet loaded; threadpoolctl covers a BLAS already
    loaded.  One thread also makes float results independent of the machine's core count.
    """
    for name, value in THREAD_ENV.items():
        os.environ.setdefault(name, value)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@dataclass
class Outcome:
    """What a task attempt produced: tables on success, error text otherwise."""

    task_id: str
    parts: dict[str, bytes] = field(default_factory=dict)  # table -> encoded Parquet part
    payload: dict[str, pa.Table] | None = None  # what dependent tasks receive (sample tasks)
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0  # the attempt's wall time in the worker, tables encoded included
    cpu_s: float = 0.0   # its CPU time (all threads of the process): the core-seconds it cost
    phases: dict[str, float] = field(default_factory=dict)  # cpu_s by phase (contract.timing)

    @property
    def ok(self) -> bool:
        return self.error is None


def to_arrow(name: str, columns: dict[str, Any], task: Task) -> pa.Table:
    """Columns from a worker (plus the task key) as a table of the explicit schema ``name``."""
    schema = SCHEMAS[name]
    n = None
    for value in columns.values():
        if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
            n = len(value)
            break
    if n is None:  # a single-row table given as scalars
        columns, n = {k: [v] for k, v in columns.items()}, 1
    cols = dict(columns)
    cols.setdefault("task_id", [task.id] * n)
    cols.setdefault("L", [task.L] * n)
    cols.setdefault("T", [task.T] * n)
    missing = set(schema.names) - set(cols)
    extra = set(cols) - set(schema.names)
    if missing or extra:
        raise ValueError(f"table {name!r}: missing columns {sorted(missing)}, unexpected {sorted(extra)}")
    arrays = [pa.array(cols[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


#: What a sample task hands to the tasks that depend on it.
PAYLOAD_TABLES = ("samples", "ising")


def payload_of(outcome: "Outcome") -> dict[str, pa.Table] | None:
    """The tables a dependent task receives from a finished sample task (None for other kinds)."""
    return outcome.payload if outcome.ok else None


def run_task(task: Task, inputs: dict[str, Any] | None = None) -> Outcome:
    """Run ``task`` with its dependencies' outputs ``inputs`` (dep id -> {"samples", "ising"} tables)."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        if task.id in os.environ.get(FAULT_ENV, "").split(","):
            raise InjectedFault(f"injected failure of task {task.id} (${FAULT_ENV})")
        from workers import tasks as worker_tasks  # lazy: numba lives there

        columns, phases = run_phases(worker_tasks.RUNNERS[task.kind], task.config, task.spawn_key, inputs or {})
        expected = set(TASK_TABLES[task.kind])
        if set(columns) != expected:
            raise ValueError(f"{task.kind} task returned tables {sorted(columns)}, expected {sorted(expected)}")
        tables = {name: to_arrow(name, cols, task) for name, cols in columns.items()}
        payload = {n: tables[n] for n in PAYLOAD_TABLES} if task.kind == "sample" else None
        parts = {n: encode_part(n, task.id, t) for n, t in tables.items()}
        cpu_s = time.process_time() - cpu0
        phases["encode"] = cpu_s - sum(phases.values())  # tables built and compressed, inputs read
        return Outcome(task.id, parts=parts, payload=payload, wall_s=time.perf_counter() - wall0,
                       cpu_s=cpu_s, phases=phases)
    except Exception as err:  # noqa: BLE001 - every failure becomes a failures row
        return Outcome(task.id, error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())


def warmup(hold_s: float = 0.0) -> float:
    """Compile (or load from numba's cache) every kernel in this process, and load pyarrow's
    Parquet writer (~0.4 s the first time), before tasks fan out, so that no task's recorded cost
    includes the process's start-up.

    ``hold_s`` keeps the worker busy a moment longer, so that warm-ups submitted together
    land on different worker processes.
    """
    from workers import tasks as worker_tasks

    t0 = time.perf_counter()
    for name, schema in SCHEMAS.items():
        encode_part(name, "warmup", schema.empty_table())
    seconds = worker_tasks.warmup() + time.perf_counter() - t0
    time.sleep(hold_s)
    return seconds
