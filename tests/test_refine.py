"""Adaptive sweeps ([refine]): the placement rule, the rounds, their record, resume and stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.refine import _place
from orchestrator.cli import main
from orchestrator.plan import make_plan
from orchestrator.refine import REFINE_FILE, plan_of, refine_key
from orchestrator.runner import Interrupted, run_sweep
from orchestrator.scheduler import Callbacks
from orchestrator.spec import SpecError, load_spec, parse_spec
from orchestrator.store import Store

SPEC = """
[sweep]
name = "adaptive-small"
seed = 11
lattice_sizes = [8, 16]
temperatures = {{ start = 1.8, stop = 3.0, num = 7 }}

[sampling]
algorithm = "auto"
burn_in = 300
samples = 600
thin = "auto"

[refine]
target = "tc"
precision = {precision}
max_rounds = 3
points_per_round = 3
budget_core_hours = {budget}
"""

#: What a rerun may change in refine.json: what the rounds cost here and how long they took.
MEASURED = ("sampling_core_seconds", "estimate_s")


def write_spec(path: Path, precision=1e-6, budget=1.0, extra: str = "") -> Path:
    path.write_text(SPEC.format(precision=precision, budget=budget) + extra)
    return path


def rounds_of(out: Path) -> list[dict]:
    record = json.loads((out / REFINE_FILE).read_text())
    return [{k: v for k, v in r.items() if k not in MEASURED} for r in record["rounds"]]


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    base = tmp_path_factory.mktemp("refine")
    spec = write_spec(base / "spec.toml")
    out = base / "serial"
    summary = run_sweep(load_spec(spec), str(out), backend="serial")
    return spec, out, summary


def test_points_stay_in_the_window_keep_their_distance_and_never_repeat():
    taken = [2.2, 2.26, 2.4]
    new = _place(2.27, 0.04, 4, taken)
    assert len(new) == 4 and new == sorted(new)
    assert all(2.23 - 1e-9 <= t <= 2.31 + 1e-9 for t in new)
    every = np.array(sorted(taken + new))
    assert np.min(np.diff(every)) >= 0.04 / 8 / 2  # half the nominal gap at worst
    assert _place(2.27, 0.04, 4, taken) == new  # deterministic
    full = list(np.round(np.linspace(2.23, 2.31, 200), 5))
    assert _place(2.27, 0.04, 4, full) == []  # a full window gives no point rather than a repeat


def test_rounds_add_new_temperatures_and_record_the_estimate(serial):
    spec_path, out, summary = serial
    record = json.loads((out / REFINE_FILE).read_text())
    assert [r["round"] for r in record["rounds"]] == [0, 1, 2]
    assert record["stopped"]["reason"].startswith("round limit")
    assert summary.refine["stopped"] == record["stopped"]
    grid = set(load_spec(spec_path).temperatures)
    seen = {8: set(grid), 16: set(grid)}
    for r in record["rounds"][1:]:
        for L, temps in r["added"].items():
            assert len(temps) == 3 and not (set(temps) & seen[int(L)])  # never a repeat
            seen[int(L)] |= set(temps)
    for r in record["rounds"]:
        assert np.isfinite(r["estimate"]) and 0 < r["error"] < 0.1 and r["what"] == "Binder crossing 8/16"
        assert r["sweep_core_seconds_predicted"] > 0 and r["sampling_core_seconds"] > 0
    # every round's tasks are in the dataset and in the plan the loaders read
    from analysis import read_table

    ising = read_table(str(out), "ising")
    for L in (8, 16):
        assert set(np.round(ising[ising["L"] == L]["T"], 9)) == {round(t, 9) for t in seen[L]}
    assert summary.total == len(ising) == summary.run and not summary.failed
    status = Store(str(out))
    assert len(plan_of(load_spec(spec_path), status)) == len(ising)


def test_rerun_replays_the_record_and_runs_nothing(serial):
    spec_path, out, _ = serial
    before = rounds_of(out)
    summary = run_sweep(load_spec(spec_path), str(out), backend="serial")
    assert summary.run == 0 and rounds_of(out) == before


def test_same_rounds_and_tables_on_the_process_pool(serial, tmp_path):
    from test_run import tables_of

    spec_path, out, _ = serial
    other = tmp_path / "process"
    run_sweep(load_spec(spec_path), str(other), backend="process", workers=2)
    assert rounds_of(other) == rounds_of(out)
    a, b = tables_of(out), tables_of(other)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].equals(b[name]), name


@pytest.mark.ray
def test_same_rounds_on_ray_through_the_cli_with_one_ray_for_all_rounds(serial, tmp_path):
    from test_run import tables_of

    spec_path, out, _ = serial
    other = tmp_path / "ray"
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec_path), "--out", str(other)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    result = subprocess.run(cli, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refine: 3 round(s); stopped at round 2: round limit" in result.stdout
    assert result.stderr.count("backend ray ready after") == 1  # Ray started once, not per round
    assert result.stderr.count("refine round 2: Binder crossing 8/16 = ") == 1
    assert rounds_of(other) == rounds_of(out)
    a, b = tables_of(out), tables_of(other)
    for name in a:
        assert a[name].equals(b[name]), name


class _StopInRound(Callbacks):
    """Ctrl-C after ``after`` tasks of round ``target``."""

    def __init__(self, target: int, after: int):
        self.target, self.after, self.round, self.count = target, after, -1, 0

    def note(self, text: str) -> None:
        if text.startswith("refine round") and text.endswith(")"):
            self.round = int(text.split()[2].rstrip(":"))

    def finished(self, task, ok: bool) -> None:
        if self.round == self.target:
            self.count += 1
            if self.count == self.after:
                raise KeyboardInterrupt


def test_a_run_stopped_mid_round_resumes_that_round(serial, tmp_path):
    spec_path, out, _ = serial
    spec = load_spec(spec_path)
    mine = tmp_path / "resumed"
    with pytest.raises(Interrupted):
        run_sweep(spec, str(mine), backend="serial", callbacks=_StopInRound(1, 2))
    partial = json.loads((mine / REFINE_FILE).read_text())
    assert len(partial["rounds"]) == 2 and "estimate" not in partial["rounds"][1]
    assert partial["stopped"] is None
    summary = run_sweep(spec, str(mine), backend="serial")
    assert rounds_of(mine) == rounds_of(out)
    assert summary.run == summary.total - (7 * 2 + 2)  # the grid and the 2 tasks saved in round 1


def test_budget_stops_before_a_round_that_would_pass_it(tmp_path):
    from orchestrator.costs import task_seconds

    grid = load_spec(write_spec(tmp_path / "grid.toml"))
    round0_h = sum(task_seconds(make_plan(grid)).values()) / 3600
    spec = load_spec(write_spec(tmp_path / "spec.toml", budget=1.05 * round0_h))  # round 1 adds 6 tasks
    summary = run_sweep(spec, str(tmp_path / "out"), backend="serial")
    record = json.loads((tmp_path / "out" / REFINE_FILE).read_text())
    assert len(record["rounds"]) == 1 and record["stopped"]["reason"].startswith("budget")
    assert summary.run == 14


def test_a_grid_already_over_budget_is_refused_before_anything_is_written(tmp_path):
    from orchestrator.runner import ResourceError

    spec = load_spec(write_spec(tmp_path / "spec.toml", budget=1e-7))
    with pytest.raises(ResourceError, match="refine.budget_core_hours = 1e-07 is below the predicted cost"):
        run_sweep(spec, str(tmp_path / "out"), backend="serial")
    assert not (tmp_path / "out").exists()


def test_without_a_cost_model_the_rounds_are_refused_or_stop(tmp_path, monkeypatch):
    import orchestrator.refine as refine
    from orchestrator.costs import CostModelError
    from orchestrator.runner import ResourceError

    def broken(plan, model=None):
        raise CostModelError("no cost model at /nowhere")

    monkeypatch.setattr(refine, "task_seconds", broken)
    spec = load_spec(write_spec(tmp_path / "spec.toml"))
    with pytest.raises(ResourceError, match=r"\[refine\] needs the cost model"):
        run_sweep(spec, str(tmp_path / "out"), backend="serial")
    run_sweep(spec, str(tmp_path / "out"), backend="serial", check=False)
    record = json.loads((tmp_path / "out" / REFINE_FILE).read_text())
    assert len(record["rounds"]) == 1 and "cost model cannot be read" in record["stopped"]["reason"]


def test_a_lower_max_rounds_drops_the_rounds_beyond_it(serial, tmp_path):
    import shutil

    spec_path, out, _ = serial
    mine = tmp_path / "copy"
    shutil.copytree(out, mine)
    spec = load_spec(spec_path)
    spec = parse_spec({**spec.to_dict(), "refine": {**spec.to_dict()["refine"], "max_rounds": 2}})
    summary = run_sweep(spec, str(mine), backend="serial")
    record = json.loads((mine / REFINE_FILE).read_text())
    assert len(record["rounds"]) == 2 and record["stopped"] == {"round": 1, "reason": record["stopped"]["reason"]}
    assert record["stopped"]["reason"].startswith("round limit: 2 round(s) run") and summary.run == 0
    assert rounds_of(mine) == rounds_of(out)[:2]


def test_a_backend_interrupted_while_starting_is_closed():
    from orchestrator.refine import SharedEngine

    closed = []

    class Stub:
        def start(self):
            raise KeyboardInterrupt

        def close(self, abort=False):
            closed.append(abort)

    engine = SharedEngine(Stub)
    with pytest.raises(KeyboardInterrupt):
        engine.start()
    engine.close(abort=True)  # what the round's `finally` does
    assert closed == [True]


def test_precision_reached_stops_the_rounds(tmp_path):
    spec = load_spec(write_spec(tmp_path / "spec.toml", precision=0.5))
    run_sweep(spec, str(tmp_path / "out"), backend="serial")
    record = json.loads((tmp_path / "out" / REFINE_FILE).read_text())
    assert len(record["rounds"]) == 1 and record["stopped"]["reason"].startswith("precision reached")


def test_a_record_of_another_grid_is_set_aside_and_the_rounds_restart(tmp_path):
    out = tmp_path / "out"
    run_sweep(load_spec(write_spec(tmp_path / "a.toml", precision=0.5)), str(out), backend="serial")
    other = (tmp_path / "a.toml").read_text().replace("num = 7", "num = 6")
    (tmp_path / "b.toml").write_text(other)
    spec = load_spec(tmp_path / "b.toml")
    run_sweep(spec, str(out), backend="serial")
    assert json.loads((out / REFINE_FILE).read_text())["key"] == refine_key(spec)
    assert len(list((out / "_damaged").glob(f"*{REFINE_FILE}"))) == 1


def test_flows_are_planned_once_the_rounds_are_over(tmp_path):
    spec = load_spec(write_spec(tmp_path / "spec.toml", extra="\n[rg_flow]\nepochs = 1\nrbm_flow_steps = 0\n"))
    added = {8: [2.25], 16: [2.25]}
    assert make_plan(spec, added, with_flows=False).count("flow") == 0
    store = Store(str(tmp_path / "out"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sweep.json").write_text(json.dumps({"spec": spec.to_dict()}))
    record = {"key": refine_key(spec), "rounds": [{"round": 0, "added": {}}, {"round": 1, "added": {"8": [2.25],
                                                                                                    "16": [2.25]}}],
              "stopped": None}
    (tmp_path / "out" / REFINE_FILE).write_text(json.dumps(record))
    assert plan_of(spec, store).count("flow") == 0 and plan_of(spec, store).count("sample") == 16
    (tmp_path / "out" / REFINE_FILE).write_text(json.dumps({**record, "stopped": {"round": 1, "reason": "x"}}))
    flows = plan_of(spec, store)
    assert flows.count("flow") == 16 and flows.count("sample") == 16  # one per (L, T): 8 T at L = 8 and 16


@pytest.mark.parametrize("key, value, message", [
    ("target", '"tcc"', "refine.target must be one of tc | peaks, got 'tcc'"),
    ("precision", "0", "refine.precision must be > 0, got 0.0"),
    ("max_rounds", "0", "refine.max_rounds must be an integer >= 1 and <= 100, got 0"),
    ("points_per_round", "1.5", "refine.points_per_round must be an integer >= 1 and <= 1,000, got 1.5"),
    ("budget_core_hours", "-1", "refine.budget_core_hours must be > 0, got -1.0"),
])
def test_bad_refine_values_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, key, value, message):
    text = write_spec(tmp_path / "spec.toml").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(key + " "))
    (tmp_path / "spec.toml").write_text(text.replace(line, f"{key} = {value}"))
    assert main(["run", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rgsweep: error: {message}"]
    assert not (tmp_path / "out").exists()


def test_a_binder_target_needs_two_sizes_and_a_grid_of_four():
    raw = {"sweep": {"name": "a", "seed": 1, "lattice_sizes": [8], "temperatures": [2.0, 2.2, 2.4, 2.6]},
           "refine": {}}
    with pytest.raises(SpecError, match="at least 2 sizes"):
        parse_spec(raw)
    raw["sweep"].update(lattice_sizes=[8, 16], temperatures=[2.0, 2.2, 2.4])
    with pytest.raises(SpecError, match="at least 4 temperatures"):
        parse_spec(raw)


def test_report_shows_the_rounds_unresolved_ones_too_and_not_a_record_of_another_spec(serial, tmp_path):
    import shutil

    from analysis.report import build_report

    _, out, _ = serial
    mine = tmp_path / "copy"
    shutil.copytree(out, mine)
    record = json.loads((mine / REFINE_FILE).read_text())
    record["rounds"][0]["error"] = None  # a round whose bracket was not resolved
    (mine / REFINE_FILE).write_text(json.dumps(record))
    index = build_report(str(mine), n_boot=20)
    summary = (index.parent / "summary.md").read_text()
    assert "Adaptive refinement" in summary and "stopped at round 2: round limit" in summary
    assert "not resolved" in summary and "figure refine.png" not in summary  # not listed as missing
    assert (index.parent / "refine.png").exists()
    sweep = json.loads((mine / "sweep.json").read_text())
    del sweep["spec"]["refine"]  # the spec that last ran had no [refine]: its old record is not shown
    (mine / "sweep.json").write_text(json.dumps(sweep))
    index = build_report(str(mine), n_boot=20)
    assert "Adaptive refinement" not in (index.parent / "summary.md").read_text()


def test_training_runs_after_the_rounds_on_every_temperature(tmp_path):
    class Log(Callbacks):
        def __init__(self):
            self.events = []

        def note(self, text):
            self.events.append(("note", text))

        def finished(self, task, ok):
            self.events.append((task.kind, ok))

    extra = "\n[rbm]\nn_hidden = [4]\nepochs = 1\ngibbs_chains = 10\ngibbs_steps = 10\n"
    text = write_spec(tmp_path / "spec.toml", extra=extra).read_text()
    (tmp_path / "spec.toml").write_text(text.replace("max_rounds = 3", "max_rounds = 2"))
    log = Log()
    summary = run_sweep(load_spec(tmp_path / "spec.toml"), str(tmp_path / "out"), backend="serial", callbacks=log)
    kinds = [e[0] for e in log.events]
    last_note = max(i for i, k in enumerate(kinds) if k == "note")
    assert "stop:" in log.events[last_note][1]
    assert "train" not in kinds[:last_note] and kinds[last_note + 1:].count("train") == 2 * (7 + 3)
    assert summary.total == 2 * (7 + 3) * 2 and not summary.failed


def test_training_follows_the_added_sample_tasks(tmp_path):
    spec = load_spec(write_spec(tmp_path / "spec.toml", extra="\n[rbm]\nepochs = 2\nseeds = [0, 1]\n"))
    plan = make_plan(spec, {8: [2.25, 2.27], 16: [2.25]}, with_flows=False)
    samples = {t.id: t for t in plan if t.kind == "sample"}
    trains = [t for t in plan if t.kind == "train"]
    assert len(samples) == 7 * 2 + 3 and len(trains) == 2 * len(samples)
    assert {t.deps[0] for t in trains} == set(samples)
    assert {(t.L, t.T) for t in trains} >= {(8, 2.25), (8, 2.27), (16, 2.25)}


def test_peaks_target_places_points_per_lattice_size_at_its_peaks(tmp_path):
    text = write_spec(tmp_path / "spec.toml").read_text().replace('target = "tc"', 'target = "peaks"')
    (tmp_path / "spec.toml").write_text(text.replace("max_rounds = 3", "max_rounds = 2"))
    run_sweep(load_spec(tmp_path / "spec.toml"), str(tmp_path / "out"), backend="serial")
    record = json.loads((tmp_path / "out" / REFINE_FILE).read_text())
    assert len(record["rounds"]) == 2 and record["rounds"][1]["what"].startswith("C and chi peak")
    parts = {p["quantity"]: p for p in record["rounds"][0]["parts"]}
    assert set(parts) == {"C peak L=8", "chi peak L=8", "C peak L=16", "chi peak L=16"}
    for L in (8, 16):
        added = record["rounds"][1]["added"][str(L)]
        assert len(added) == 3
        peaks = [parts[f"{o} peak L={L}"]["T"] for o in ("C", "chi")]
        # every new point is nearer one of its own size's peaks than the grid spacing (0.2)
        assert all(min(abs(t - p) for p in peaks) < 0.2 for t in added)
    assert record["rounds"][1]["added"]["8"] != record["rounds"][1]["added"]["16"]


def test_a_damaged_record_is_moved_aside_and_the_rounds_start_again(tmp_path):
    out = tmp_path / "out"
    spec = load_spec(write_spec(tmp_path / "spec.toml", precision=0.5))
    run_sweep(spec, str(out), backend="serial")
    (out / REFINE_FILE).write_text('{"key": "trunc')
    summary = run_sweep(spec, str(out), backend="serial")
    assert summary.run == 0 and json.loads((out / REFINE_FILE).read_text())["key"] == refine_key(spec)
    assert [p.read_text() for p in (out / "_damaged").glob(f"*{REFINE_FILE}")] == ['{"key": "trunc']
