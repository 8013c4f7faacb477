"""Memory and disk estimates per task, checked against the machine before a run.

The estimates are compared with the peak resident set (``VmHWM``) of real tasks run in fresh
processes; the check's refusals are tested against machines described to it (a stated memory
and disk), so no test depends on what this machine has free."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import resources
from orchestrator.cli import main
from orchestrator.plan import make_plan
from orchestrator.resources import Machine, check, task_estimate
from orchestrator.spec import parse_spec

GiB = 2**30

SPEC = {"sweep": {"name": "res", "seed": 5, "lattice_sizes": [8, 32], "temperatures": [2.2, 2.6]},
        "sampling": {"burn_in": 20, "samples": 40_000, "thin": 1},
        "rbm": {"n_hidden": [8], "epochs": 1, "checkpoints": [0, 1], "gibbs_steps": 50},
        "analysis": {"block_sizes": [2]}}  # the memory, not the measurements, is under test here


def plan_of(doc: dict):
    return make_plan(parse_spec(doc))


def roomy(**kw) -> Machine:
    base = dict(memory_total=64 * GiB, memory_available=60 * GiB, cores=2, disk_free=1e12)
    return Machine(**{**base, **kw})


MEASURE = """
import json, sys
from orchestrator.execute import limit_threads, run_task, warmup
from orchestrator.plan import make_plan
from orchestrator.spec import parse_spec
limit_threads()
plan = make_plan(parse_spec(json.loads(sys.argv[1])))
warmup()
inputs = {}
for task in plan:
    if task.kind == "sample" and task.L == 32 and task.T == 2.2:
        sample = run_task(task)
        target = task
        break
for task in plan:
    if task.kind == "train" and task.deps == (target.id,):
        train = task
if sys.argv[2] == "train":  # the sample task's own peak must not count: start a clean peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    outcome = run_task(train, {target.id: sample.payload})
    assert outcome.ok, outcome.traceback
    tid = train.id
else:
    tid = target.id
peak = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"id": tid, "peak": peak}))
"""


@pytest.mark.parametrize("kind", ["sample", "train"])
def test_estimate_tracks_the_measured_peak_memory(kind):
    """A task's estimate against the peak resident set of the process that ran it (40,000 x 1,024
    spins: the data term dominates the baseline): within 30 %."""
    run = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(SPEC), kind], capture_output=True,
                         text=True, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-3000:]
    measured = json.loads(run.stdout.splitlines()[-1])
    plan = plan_of(SPEC)
    estimate = task_estimate(plan.by_id()[measured["id"]], plan.by_id()).memory_bytes
    assert 0.7 < estimate / measured["peak"] < 1.3, (estimate, measured["peak"])


def test_estimates_grow_with_what_the_task_holds():
    plan = plan_of(SPEC)
    by_id = plan.by_id()
    sample8, sample32 = (next(t for t in plan if t.kind == "sample" and t.L == L) for L in (8, 32))
    e8, e32 = task_estimate(sample8, by_id), task_estimate(sample32, by_id)
    # 40,000 x 1,024 spins: the stored configurations dominate, bit-packed on disk
    assert e32.memory_bytes - e8.memory_bytes == pytest.approx(resources.SAMPLE_PER_SPIN * 40_000 * (1024 - 64))
    assert e32.disk_bytes - e8.disk_bytes == pytest.approx(40_000 * (1024 - 64) / 8)
    bigger = plan_of({**SPEC, "rbm": {**SPEC["rbm"], "n_hidden": [64], "checkpoints": [0, 1, 1]}})
    small = next(t for t in plan if t.kind == "train" and t.L == 32)
    large = next(t for t in bigger if t.kind == "train" and t.L == 32)
    assert task_estimate(large, bigger.by_id()).memory_bytes > task_estimate(small, by_id).memory_bytes
    assert task_estimate(large, bigger.by_id()).disk_bytes > task_estimate(small, by_id).disk_bytes


def test_pooled_flow_estimate_counts_every_temperature_of_its_size():
    doc = {**SPEC, "rg_flow": {"epochs": 1}}
    one = plan_of(doc)  # two temperatures, then three
    two = plan_of({**doc, "sweep": {**doc["sweep"], "temperatures": [2.2, 2.6, 3.0]}})
    flow1, flow2 = (next(t for t in p if t.kind == "flow" and t.L == 32 and t.config.part == "pool")
                    for p in (one, two))
    grow = task_estimate(flow2, two.by_id()).memory_bytes - task_estimate(flow1, one.by_id()).memory_bytes
    # the third temperature adds its first 500 configurations to follow and its packed samples;
    # the training set stays at pool_samples ("auto": one temperature's 40,000)
    assert grow == resources.TRAIN_PER_SPIN * 500 * 1024 + 40_000 * 1024 / 8
    levels = next(t for t in two if t.kind == "flow" and t.L == 32 and t.config.part == "levels")
    assert task_estimate(levels, two.by_id()).memory_bytes < task_estimate(flow2, two.by_id()).memory_bytes


def test_a_roomy_machine_passes():
    plan = plan_of(SPEC)
    assert check(plan, list(plan), 2, roomy()) == []
    assert check(plan, [], 2, roomy(memory_total=1, memory_available=1, disk_free=0)) == []


def test_a_task_larger_than_the_memory_is_refused_with_its_numbers():
    plan = plan_of(SPEC)
    (line,) = check(plan, list(plan), 2, roomy(memory_total=0.3 * GiB, memory_available=0.3 * GiB))
    assert line.startswith("the train task L=32 T=2.") and "needs about" in line
    assert "more than this machine's 0.3 GiB" in line or "more than this machine's 307.2 MiB" in line


def test_too_many_workers_for_the_memory_available_names_a_count_that_fits():
    plan = plan_of(SPEC)
    by_id = plan.by_id()
    sizes = sorted((task_estimate(t, by_id).memory_bytes for t in plan), reverse=True)
    available = sizes[0] + sizes[1] + 0.5 * sizes[2]  # two fit, three do not
    (line,) = check(plan, list(plan), 4, roomy(memory_available=available))
    assert line.startswith("4 workers running the largest tasks at once need about")
    assert line.endswith("use --workers 2")
    assert check(plan, list(plan), 2, roomy(memory_available=available)) == []
    assert check(plan, list(plan), 1, roomy(memory_available=1.0)) == []  # one at a time: total counts


def test_disk_needed_by_the_tasks_still_to_run():
    plan = plan_of(SPEC)
    need = sum(task_estimate(t, plan.by_id()).disk_bytes for t in plan)
    (line,) = check(plan, list(plan), 1, roomy(disk_free=need / 2))
    assert "of disk, more than the" in line and "free for OUT" in line
    assert check(plan, list(plan)[:1], 1, roomy(disk_free=need / 2)) == []
    assert check(plan, list(plan), 1, roomy(disk_free=None)) == []  # an object store: unknown
    # on a cluster the tasks run elsewhere: only the disk is this machine's business
    assert check(plan, list(plan), 2, roomy(memory_total=1.0, memory_available=1.0), memory=False) == []


def _spec_file(tmp_path, doc_text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(doc_text)
    return path


SMALL = """
[sweep]
name = "res"
seed = 5
lattice_sizes = [8]
temperatures = [2.2, 2.6]
[sampling]
burn_in = 20
samples = 200
thin = 1
"""


def test_cli_refuses_with_exit_2_writes_nothing_and_the_flag_overrides(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(resources, "machine", lambda out=None: roomy(memory_total=0.1 * GiB))
    spec, out = _spec_file(tmp_path, SMALL), tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("rgsweep: error: the sample task L=8 T=")
    assert lines[0].endswith("nothing was written (--no-resource-check runs it anyway)")
    assert not out.exists()
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet",
                 "--no-resource-check"]) == 0
    # finished tasks need nothing more: the rerun passes the check even on that machine
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    assert "2 skipped" in capsys.readouterr().out


def test_validate_prints_the_largest_task_and_warns_about_this_machine(tmp_path, monkeypatch, capsys):
    spec = _spec_file(tmp_path, SMALL)
    assert main(["validate", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "largest task: ~" in out and "(sample L=8 T=" in out and "on disk" in out
    assert "warning" not in out
    monkeypatch.setattr(resources, "machine", lambda out=None: roomy(memory_total=0.1 * GiB))
    assert main(["validate", str(spec)]) == 0
    assert "warning: on this machine, the sample task L=8" in capsys.readouterr().out
