"""The cost model and the forecast: phase timing, the work features against what the tasks really
do, the fit, the schedule simulation against the driver's own loop, and `validate --json`.

Nothing here looks at a timing's size (benchmarks do: `rgsweep bench sweep`); the tests check
that the bookkeeping is exact.
"""

from __future__ import annotations

import heapq
import json
import subprocess
import sys
import time

import numpy as np
import pytest

from contract.timing import phase, run_phases
from orchestrator import costs, forecast
from orchestrator.execute import Outcome, run_task
from orchestrator.plan import Task, make_plan
from orchestrator.scheduler import Scheduler
from orchestrator.spec import parse_spec

TINY = {"sweep": {"name": "tiny", "seed": 5, "lattice_sizes": [4, 8], "temperatures": [2.2, 3.0]},
        "sampling": {"burn_in": 20, "samples": 200, "thin": 3},
        "rbm": {"n_hidden": [4, 24], "epochs": 2, "checkpoints": [0, 1], "gibbs_chains": 4,
                "gibbs_steps": 20, "max_exact_units": 8},
        "rg_flow": {"layers": [4], "epochs": 1, "rbm_flow_steps": 2, "lattice_sizes": [8]}}


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_phases_nest_and_add_up_to_the_cpu_time():
    def work():
        _spin(0.02)
        with phase("outer"):
            _spin(0.03)
            with phase("inner"):
                _spin(0.04)
            _spin(0.01)
        return "done"

    t0 = time.process_time()
    result, phases = run_phases(work)
    total = time.process_time() - t0
    assert result == "done" and set(phases) == {"other", "outer", "inner"}
    assert phases["inner"] >= 0.04 and phases["outer"] >= 0.04 and phases["other"] >= 0.02
    assert phases["outer"] < 0.04 + 0.03  # the inner phase's time is not charged to the outer one
    assert sum(phases.values()) == pytest.approx(total, abs=5e-3)
    with phase("nothing records this"):  # outside run_phases: a no-op
        pass


def test_a_task_that_raises_leaves_no_recording_behind_and_nesting_restores():
    def boom():
        with phase("doomed"):
            raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        run_phases(boom)

    def outer():
        with phase("a"):
            _, inner = run_phases(_spin, 0.01)
            assert "other" in inner
            _spin(0.01)
        return None

    _, phases = run_phases(outer)
    assert set(phases) <= {"a", "other"} and phases["a"] >= 0.01


@pytest.fixture(scope="module")
def ran():
    """Every task of TINY run in this process: {id: (task, outcome, tables)}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    plan = make_plan(parse_spec(TINY))
    payloads, out = {}, {}
    for task in plan:
        outcome = run_task(task, {d: payloads[d] for d in task.deps})
        assert outcome.ok, outcome.traceback
        if outcome.payload is not None:
            payloads[task.id] = outcome.payload
        out[task.id] = (task, outcome, {n: pq.read_table(pa.BufferReader(b)) for n, b in outcome.parts.items()})
    return plan, out


def test_every_recorded_phase_has_a_model_and_the_phases_add_up(ran):
    plan, out = ran
    by_id = plan.by_id()
    for task, outcome, _ in out.values():
        assert sum(outcome.phases.values()) == pytest.approx(outcome.cpu_s, rel=1e-6, abs=1e-6)
        modelled = set(costs.features(task, by_id))
        for name in outcome.phases:
            assert costs.PHASE_MODEL.get((task.kind, name), "rest") in modelled, (task.kind, name)


def test_the_schedule_is_what_the_sampler_does(ran):
    plan, out = ran
    for task, _, tables in out.values():
        if task.kind != "sample":
            continue
        row = tables["ising"].to_pylist()[0]
        s = costs.sample_schedule(task.config)
        assert row["algorithm_used"] == s["algorithm"] and row["thin"] == s["thin"]
        assert row["n_measurements"] == s["measure"]  # sweeps per chain of the measurement phase


def test_checkpoints_and_partition_method_are_what_training_does(ran):
    plan, out = ran
    seen = set()
    for task, _, tables in out.values():
        if task.kind != "train":
            continue
        rows = tables["free_energy"].to_pylist()
        assert len(rows) == costs.checkpoint_count(task.config)
        assert {r["lnZ_method"] for r in rows} == {costs.lnz_method(task.config)}
        seen.add(costs.lnz_method(task.config))
    assert seen == {"exact", "ais"}  # both branches exercised (4 and 24 hidden units, limit 8)


def test_the_auto_sampler_choice_and_its_measurement_length_are_the_sampler_s():
    """algorithm = "auto" with thin = "auto": the model picks the sampler the run picks, and
    measures as many sweeps as the run (all chains) for the thin the run chose (the run measures
    its own tau_int; the model tabulates it)."""
    spec = parse_spec({"sweep": {"name": "a", "seed": 3, "lattice_sizes": [8, 16], "temperatures": [1.8, 2.6]},
                       "sampling": {"algorithm": "auto", "burn_in": 50, "samples": 256, "thin": "auto"}})
    seen = set()
    for task in make_plan(spec):
        row = run_task(task)
        assert row.ok, row.traceback
        import pyarrow as pa
        import pyarrow.parquet as pq

        ising = pq.read_table(pa.BufferReader(row.parts["ising"])).to_pylist()[0]
        s = costs.sample_schedule(task.config)
        assert ising["algorithm_used"] == s["algorithm"]
        assert ising["n_measurements"] == -(-256 // s["chains"]) * ising["thin"] * s["chains"]  # all chains
        seen.add(s["algorithm"])
    assert seen == {"wolff", "multispin"}


def test_thin_auto_follows_the_tabulated_autocorrelation_time():
    spec = parse_spec({**TINY, "sampling": {"algorithm": "metropolis", "samples": 100, "thin": "auto"}})
    task = next(t for t in make_plan(spec) if t.kind == "sample" and t.L == 8)
    s = costs.sample_schedule(task.config)
    tau = costs.tau_sweeps(8, task.T, "metropolis")
    assert s["thin"] == max(1, int(np.ceil(2 * tau))) and s["pilot"] >= 1000


def test_the_fit_recovers_known_coefficients():
    from benchmarks.costs import fit_model

    true = {"fit_madd": 2e-11, "fit_units": 3e-9, "fit_batches": 1e-5, "fit_calls": 0.01}
    rng = np.random.default_rng(0)
    direct = []
    for _ in range(12):
        n_v, n_h, n = (int(x) for x in rng.integers([16, 4, 100], [4096, 1024, 5000]))
        feats = costs.fit_features(int(rng.integers(1, 20)), n, n_v, n_h, 5, 100)
        direct.append(("fit", feats, sum(true[k] * v for k, v in feats.items())))
    fitted = fit_model([], direct)["coefficients"]["fit"]
    for key, value in true.items():
        assert fitted[key] == pytest.approx(value, rel=1e-6)


def test_the_stored_model_covers_every_phase_model():
    coef = costs.load_model()["coefficients"]
    plan = make_plan(parse_spec(TINY))
    by_id = plan.by_id()
    for task in plan:
        for name, feats in costs.features(task, by_id).items():
            key = f"{task.kind}.rest" if name == "rest" else name
            assert key in coef and set(feats) <= set(coef[key]), (key, set(feats) - set(coef.get(key, {})))
            assert all(v >= 0 for v in coef[key].values())
        assert costs.predict(task, by_id) > 0


def _graph():
    """Three sample tasks (1 s) with two training tasks (2 s) each, and one flow task (4 s) on
    all samples: a plan shaped like a sweep's, with costs chosen by hand."""
    samples = [Task(kind="sample", config_json=json.dumps({"i": i})) for i in range(3)]
    trains = [Task(kind="train", config_json=json.dumps({"i": i, "j": j}), deps=(s.config_json,))
              for i, s in enumerate(samples) for j in range(2)]
    flow = Task(kind="flow", config_json="flow", deps=tuple(s.config_json for s in samples))
    tasks = samples + trains + [flow]
    ids = {t.config_json: t for t in tasks}
    seconds = {t.config_json: {"sample": 1.0, "train": 2.0, "flow": 4.0}[t.kind] for t in tasks}

    class Plan:  # the forecast needs iteration in dependency order, deps and ids only
        def __iter__(self):
            return iter(tasks)

        def by_id(self):
            return ids

    for t in tasks:  # ids are the config strings here
        object.__setattr__(t, "id", t.config_json)
    return Plan(), tasks, seconds


def test_critical_path_and_makespan_by_hand():
    plan, _, seconds = _graph()
    assert forecast.critical_path(plan, seconds) == 1 + 4  # the last sample, then the flow
    assert forecast.simulate_wall(plan, seconds, 1) == 3 * 1 + 6 * 2 + 4  # one worker: everything
    # by rank (the default; samples 5, flow 4, training 2): s0 s1 0-1, s2 1-2, t00 1-3, the
    # flow 2-6 as soon as it is ready, t01 3-5, t10 5-7, t11 6-8, t20 7-9, t21 8-10
    assert forecast.simulate_wall(plan, seconds, 2) == 10.0
    # two workers, ready tasks first in first out, by hand: s0 s1 at 0; s2 (1-2) and t00 (1-3);
    # t01 2-4, t10 3-5, t11 4-6, t20 5-7, t21 6-8; the flow, released at 2 behind them, 7-11
    assert forecast.simulate_wall(plan, seconds, 2, priority={}) == 11.0
    assert forecast.simulate_wall(plan, seconds, 100) == forecast.critical_path(plan, seconds)
    done = {t.id for t in _graph()[1] if t.kind == "sample"}
    assert forecast.critical_path(plan, seconds, done) == 4.0


class _TimedBackend:
    """Runs tasks on ``workers`` simulated workers, each taking its given seconds, and accepts
    twice as many (the rest wait in its queue, first in, first out), as the process pool and
    Ray do: the driver's real loop (:class:`Scheduler`) against a clock."""

    def __init__(self, seconds, workers):
        self.seconds, self.workers, self.max_in_flight = seconds, workers, 2 * workers
        self.now, self.running, self.queue, self.order = 0.0, [], [], 0

    def _fill(self):
        while self.queue and len(self.running) < self.workers:
            tid = self.queue.pop(0)
            heapq.heappush(self.running, (self.now + self.seconds[tid], self.order, tid))
            self.order += 1

    def submit(self, task, inputs):
        self.queue.append(task.id)
        self._fill()
        return task.id

    def wait(self, handles):
        self.now, _, tid = heapq.heappop(self.running)
        self._fill()
        return [tid]

    def outcome(self, handle):
        return Outcome(task_id=handle)

    def payload(self, handle):
        return None


class _Sink:
    def commit(self, task, outcome):
        pass

    def fail(self, task, outcome):
        raise AssertionError("no task fails here")

    def load(self, task_id):
        return None


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_the_simulation_schedules_as_the_driver_does(workers):
    plan = make_plan(parse_spec({**TINY, "sweep": {**TINY["sweep"], "temperatures": [2.0, 2.2, 2.5, 3.0]}}))
    rng = np.random.default_rng(workers)
    seconds = {t.id: float(rng.uniform(0.5, 5.0)) for t in plan}
    for priority in (forecast.ranks(list(plan), seconds), {}):  # the runner's order, and first in first out
        engine = _TimedBackend(seconds, workers)
        engine.max_in_flight = workers  # a deeper backend queue would delay the priorities a little
        Scheduler(list(plan), set(), priority=priority).run(engine, _Sink())
        assert forecast.simulate_wall(plan, seconds, workers, priority=priority) == pytest.approx(engine.now, rel=1e-12)


def test_fifo_in_a_deeper_backend_queue_is_simulated_exactly():
    plan = make_plan(parse_spec(TINY))
    seconds = {t.id: float(i % 7 + 1) for i, t in enumerate(plan)}
    engine = _TimedBackend(seconds, 2)  # accepts 4: the process pool's and Ray's queueing
    Scheduler(list(plan), set()).run(engine, _Sink())
    assert forecast.simulate_wall(plan, seconds, 2, priority={}) == pytest.approx(engine.now, rel=1e-12)


def test_longest_chain_first_beats_first_in_first_out_on_a_late_long_task():
    """Nine cheap tasks released first and one long task released last: FIFO runs the long one
    at the end; by rank it starts at once."""
    plan, tasks, seconds = _graph()
    seconds = {**seconds, tasks[-1].id: 30.0}  # the flow task: long, behind six training tasks
    fifo = forecast.simulate_wall(plan, seconds, 2, priority={})
    ranked = forecast.simulate_wall(plan, seconds, 2)
    assert ranked < fifo and ranked == pytest.approx(forecast.critical_path(plan, seconds) , abs=1.0 + 1e-9)


def test_validate_json_gives_the_forecast(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "v"\nseed = 1\nlattice_sizes = [8, 16]\ntemperatures = [2.0, 2.5]\n'
                    '[rbm]\nn_hidden = [16]\nepochs = 3\n')
    cli = [sys.executable, "-m", "orchestrator.cli", "validate", str(spec)]
    got = json.loads(subprocess.run(cli + ["--workers", "4", "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    for key in ("tasks", "core_seconds", "peak_memory_bytes", "critical_path_s", "predicted_wall_s"):
        assert key in got
    assert got["tasks"] == 8 and set(got["predicted_wall_s"]) == {"2", "4"}
    assert got["critical_path_s"] <= got["predicted_wall_s"]["4"] <= got["predicted_wall_s"]["2"]
    assert got["core_seconds"] == pytest.approx(sum(k["core_seconds"] for k in got["by_kind"].values()))
    bad = subprocess.run(cli + ["--workers", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--workers" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
