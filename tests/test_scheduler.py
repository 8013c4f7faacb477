"""The driver loop without any backend: a fake backend runs tasks in the order it is told to."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.execute import Outcome
from orchestrator.plan import make_plan
from orchestrator.scheduler import Callbacks, Scheduler
from orchestrator.spec import parse_spec

RAW = {"sweep": {"name": "s", "seed": 3, "lattice_sizes": [8, 16], "temperatures": [2.0, 2.6]},
       "rbm": {"n_hidden": [4], "seeds": [0, 1], "epochs": 1},
       "rg_flow": {"layers": [4], "epochs": 1}}


@dataclass
class FakeBackend:
    """Runs every submitted task at the next wait, in reverse order of submission (the worst order
    a real backend could pick); fails the tasks named in ``fail``."""

    max_in_flight: int = 3
    fail: frozenset = frozenset()

    def __post_init__(self):
        self.pending, self.seen_inputs, self.order = [], {}, []

    def submit(self, task, inputs):
        self.seen_inputs[task.id] = dict(inputs)
        self.pending.append(task)
        return task.id

    def wait(self, handles):
        done = list(reversed(self.pending))
        self.pending = []
        self.order += done
        return [t.id for t in done]

    def outcome(self, handle):
        return Outcome(task_id=handle, error="boom" if handle in self.fail else None)

    def payload(self, handle):
        return f"payload of {handle}"


class Sink:
    def __init__(self):
        self.committed, self.failed, self.loaded = [], [], []

    def commit(self, task, outcome):
        self.committed.append(task.id)

    def fail(self, task, outcome):
        self.failed.append(task.id)

    def load(self, task_id):
        self.loaded.append(task_id)
        return f"stored {task_id}"


class Count(Callbacks):
    def __init__(self):
        self.n = 0

    def finished(self, task, ok):
        self.n += 1


def test_every_task_runs_once_after_all_its_dependencies_with_their_payloads():
    plan = make_plan(parse_spec(RAW))
    engine, sink, count = FakeBackend(), Sink(), Count()
    scheduler = Scheduler(list(plan), set())
    scheduler.run(engine, sink, count)
    assert sorted(sink.committed) == sorted(t.id for t in plan) and count.n == len(plan)
    position = {t.id: i for i, t in enumerate(engine.order)}
    for task in plan:
        assert all(position[d] < position[task.id] for d in task.deps)
        assert engine.seen_inputs[task.id] == {d: f"payload of {d}" for d in task.deps}
    assert sink.loaded == [] and scheduler.payloads == {}  # every payload dropped once consumed
    assert scheduler.failed == [] and scheduler.blocked == []


def test_a_failure_blocks_exactly_its_descendants_and_never_loads_their_inputs():
    plan = make_plan(parse_spec(RAW))
    victim = next(t for t in plan if t.kind == "sample" and t.L == 8)
    engine, sink = FakeBackend(fail=frozenset({victim.id})), Sink()
    scheduler = Scheduler(list(plan), set())
    scheduler.run(engine, sink)
    descendants = {t.id for t in plan if victim.id in t.deps}
    descendants |= {t.id for t in plan if descendants & set(t.deps)}
    assert sink.failed == [victim.id]
    assert {t.id for t in scheduler.blocked} == descendants and descendants
    assert set(sink.committed) == {t.id for t in plan} - descendants - {victim.id}
    assert scheduler.payloads == {}


def test_dependencies_finished_in_an_earlier_run_are_loaded_once_and_shared():
    plan = make_plan(parse_spec(RAW))
    done = {t.id for t in plan if t.kind == "sample"}
    todo = [t for t in plan if t.id not in done]
    engine, sink = FakeBackend(max_in_flight=1), Sink()
    Scheduler(todo, done).run(engine, sink)
    assert sorted(sink.loaded) == sorted(done)  # each once, although several tasks need it
    assert sorted(sink.committed) == sorted(t.id for t in todo)
