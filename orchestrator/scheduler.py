"""The driver loop: tasks to a backend in dependency order, results to a sink, progress out.

:class:`Scheduler` knows no store, no files and no particular backend: a :class:`Backend` runs
tasks, a :class:`Sink` commits what they return (and supplies the inputs of dependencies that
finished in an earlier run), and one :class:`Callbacks` object hears about progress. It keeps two
separate graphs: ``children`` (who depends on whom, for releasing and for blocking the dependents
of a failed task) and ``consumers`` (how many dependents of a finished task have yet to be
submitted: its payload is dropped when that reaches zero).
"""

from __future__ import annotations

import heapq
from typing import Any, Protocol

from .execute import Outcome
from .plan import Task

__all__ = ["Backend", "Sink", "Callbacks", "Scheduler"]


class Backend(Protocol):
    """What the scheduler needs of a place to run tasks (serial, process pool, Ray)."""

    max_in_flight: int

    def start(self) -> None: ...

    def submit(self, task: Task, inputs: dict[str, Any]) -> Any: ...

    def wait(self, handles: list) -> list: ...

    def outcome(self, handle: Any) -> Outcome: ...

    def payload(self, handle: Any) -> Any: ...

    def close(self, abort: bool = False) -> None: ...


class Sink(Protocol):
    """Where results go: committing a task, recording a failure, loading an earlier result."""

    def commit(self, task: Task, outcome: Outcome) -> None: ...

    def fail(self, task: Task, outcome: Outcome) -> None: ...

    def load(self, task_id: str) -> Any: ...


class Callbacks:
    """Progress of a run; every method does nothing unless overridden."""

    def planned(self, tasks: list[Task], predicted: dict[str, float]) -> None:
        """The tasks to run (in dependency order) and their predicted core-seconds by id
        (:mod:`orchestrator.costs`; empty if the cost model cannot be read)."""

    def started(self, n_to_run: int) -> None:
        """The skip-check is done: ``n_to_run`` tasks will run."""

    def ready(self) -> None:
        """The backend is up and its kernels compiled."""

    def finished(self, task: Task, ok: bool) -> None:
        """One task came back (committed, or failed and recorded)."""

    def note(self, text: str) -> None:
        """A line about the run as a whole (the rounds of an adaptive sweep)."""


class Scheduler:
    """Runs ``todo`` (in plan order, each after its dependencies) once; ``done`` are the ids of
    tasks finished before. Afterwards ``run_count``, ``failed`` [(task, error)] and ``blocked``
    [tasks never run because a dependency failed] say what happened.

    Ready tasks are submitted highest ``priority`` first (ties, and every task without a
    priority, first in, first out). The runner gives each task its *rank*: its predicted
    core-seconds plus the largest rank among its dependents (:func:`orchestrator.forecast.ranks`),
    so the long chains start first and the last hours of a sweep are not one long task left
    alone (list scheduling by critical path). Results do not depend on the order."""

    def __init__(self, todo: list[Task], done: set[str], priority: dict[str, float] | None = None):
        self.waiting = {t.id: {d for d in t.deps if d not in done} for t in todo}
        self.children: dict[str, list[Task]] = {}
        for t in todo:
            for d in t.deps:
                self.children.setdefault(d, []).append(t)
        self.consumers = {d: len(tasks) for d, tasks in self.children.items()}
        self.priority = priority or {}
        self._ready: list[tuple[float, int, Task]] = []
        self._seq = 0
        for t in todo:
            if not self.waiting[t.id]:
                self._release(t)
        self.payloads: dict[str, Any] = {}
        self.run_count = 0
        self.failed: list[tuple[Task, str]] = []
        self.blocked: list[Task] = []
        self._blocked: set[str] = set()

    def run(self, engine: Backend, sink: Sink, callbacks: Callbacks | None = None) -> None:
        """Submit ready tasks up to ``engine.max_in_flight``, hand each result to ``sink``, release
        the dependents of each success and block those of each failure, until nothing is left."""
        callbacks = callbacks or Callbacks()
        in_flight: dict[Any, Task] = {}
        while self._ready or in_flight:
            while self._ready and len(in_flight) < engine.max_in_flight:
                task = heapq.heappop(self._ready)[2]
                in_flight[engine.submit(task, self._inputs(task, sink))] = task
            for handle in engine.wait(list(in_flight)):
                task = in_flight.pop(handle)
                outcome = engine.outcome(handle)
                self.run_count += 1
                if outcome.ok:
                    sink.commit(task, outcome)
                    if task.kind == "sample":  # always taken: the backend then holds no reference
                        payload = engine.payload(handle)
                        if self.consumers.get(task.id):
                            self.payloads[task.id] = payload
                    for child in self.children.get(task.id, []):
                        self.waiting[child.id].discard(task.id)
                        if not self.waiting[child.id]:  # never a blocked one: it waits on a failure
                            self._release(child)
                else:
                    sink.fail(task, outcome)
                    self.failed.append((task, outcome.error))
                    self._block(task.id)
                callbacks.finished(task, outcome.ok)

    def _release(self, task: Task) -> None:
        heapq.heappush(self._ready, (-self.priority.get(task.id, 0.0), self._seq, task))
        self._seq += 1

    def _inputs(self, task: Task, sink: Sink) -> dict[str, Any]:
        inputs = {}
        for d in task.deps:
            if d not in self.payloads:  # finished in an earlier run: read once, share with siblings
                self.payloads[d] = sink.load(d)
            inputs[d] = self.payloads[d]
            self._consumed(d)
        return inputs

    def _consumed(self, dep: str) -> None:
        self.consumers[dep] -= 1
        if not self.consumers[dep]:
            self.payloads.pop(dep, None)

    def _block(self, task_id: str) -> None:
        for child in self.children.get(task_id, []):
            if child.id not in self._blocked:  # a flow task waits on several sample tasks
                self._blocked.add(child.id)
                self.blocked.append(child)
                for d in child.deps:  # it will never take its inputs
                    if d in self.consumers:
                        self._consumed(d)
                self._block(child.id)
