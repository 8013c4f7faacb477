"""Behavioural: the quick sweep through the CLI on every backend, resume, failures, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import load, read_table
from orchestrator.cli import main
from orchestrator.plan import make_plan
from contract.schemas import TIMING_COLUMNS
from orchestrator.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "sweeps" / "quick.toml"


def tables_of(out: Path) -> dict[str, pd.DataFrame]:
    """Every table of a dataset, timing columns dropped, rows in a canonical order."""
    result = {}
    for name in ("ising", "samples", "series", "rbm", "rbm_params", "free_energy", "spectra",
                 "rg_alignment", "transport"):
        frame = read_table(out, name)
        if frame.empty:
            continue
        frame = frame.drop(columns=[c for c in frame.columns if c in TIMING_COLUMNS])
        result[name] = frame.sort_values(list(frame.columns[:4]) + [c for c in ("epoch", "index", "step",
                                         "rank", "unit", "block") if c in frame.columns]).reset_index(drop=True)
    return result


def files_of(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """sweeps/quick.toml with fewer samples, temperatures and epochs but both lattice sizes: what
    every backend must reproduce bit for bit (the full quick sweep is the README's first command)."""
    from test_cluster_jobs import reduced_quick

    return reduced_quick(tmp_path_factory.mktemp("spec") / "small.toml", name="small", lattice_sizes="[8, 16]",
                         n_hidden='[16, "N/4"]')  # N/4 = 64 at L = 16: AIS on every backend


@pytest.fixture(scope="module")
def serial_run(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "small"
    code = main(["run", str(small), "--out", str(out), "--backend", "serial", "--quiet"])
    assert code == 0
    return out


def test_small_sweep_serial_writes_every_table(serial_run, small):
    spec = load_spec(small)
    n_tasks = len(spec.lattice_sizes) * len(spec.temperatures)
    ising = load(serial_run).ising
    assert len(ising) == n_tasks and ising["task_id"].is_unique
    assert set(ising["L"]) == set(spec.lattice_sizes)
    samples = read_table(serial_run, "samples", filters=[("L", "=", 8)])
    assert len(samples) == len(spec.temperatures) * spec.sampling.samples
    assert samples["spins"].map(len).eq(8 * 8 // 8).all()  # 1 bit per spin
    series = read_table(serial_run, "series", filters=[("L", "=", 16)])
    assert len(series) == len(spec.temperatures) * spec.sampling.samples * spec.sampling.thin
    assert (ising["exact_u"] < 0).all() and ising["e_err"].gt(0).all()
    assert (serial_run / "sweep.json").exists()
    configs = load(serial_run).configurations(8, T=2.0)
    assert configs.shape == (spec.sampling.samples, 8, 8) and set(configs.ravel()) <= {-1, 1}


def test_rerun_writes_nothing_new(serial_run, small, capsys):
    before = files_of(serial_run)
    assert main(["run", str(small), "--out", str(serial_run), "--backend", "serial", "--quiet"]) == 0
    after = files_of(serial_run)
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed <= {"sweep.json"}  # only the spec record is rewritten (same content)
    assert "plan.json" in before
    assert set(after) == set(before)
    out = capsys.readouterr().out
    assert "0 run" in out and "skipped" in out


def test_process_backend_gives_identical_tables(serial_run, small, tmp_path):
    out = tmp_path / "small"
    assert main(["run", str(small), "--out", str(out), "--backend", "process", "--workers", "2",
                 "--quiet"]) == 0
    a, b = tables_of(serial_run), tables_of(out)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)


@pytest.mark.ray
def test_ray_backend_through_the_cli_gives_identical_tables(serial_run, small, tmp_path):
    out = tmp_path / "small"
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(small), "--out", str(out), "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}  # a user's shell
    result = subprocess.run(cli, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "results:" in result.stdout and "near Tc" in result.stdout
    assert "Token authentication" not in result.stderr  # Ray's notice is quiet
    a, b = tables_of(serial_run), tables_of(out)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)


SMALL = """
[sweep]
name = "small"
seed = 3
lattice_sizes = [4, 8]
temperatures = [2.0, 3.0]
[sampling]
burn_in = 100
samples = 200
thin = 2
[rbm]
n_hidden = [4]
epochs = 3
"""


def test_failed_task_leaves_a_row_the_rest_go_on_and_a_rerun_retries(tmp_path, monkeypatch, capsys):
    spec_path = tmp_path / "small.toml"
    spec_path.write_text(SMALL)
    plan = make_plan(load_spec(spec_path))
    out = tmp_path / "small"
    victim = next(t for t in plan if t.kind == "sample" and t.L == 8)
    dependents = [t for t in plan if victim.id in t.deps]
    assert len(dependents) == 1
    monkeypatch.setenv("RGSWEEP_FAIL_TASKS", victim.id)
    assert main(["run", str(spec_path), "--out", str(out), "--backend", "process", "--workers", "2",
                 "--quiet"]) == 1
    assert "1 failed, 1 not run (a dependency failed)" in capsys.readouterr().out
    failures = read_table(out, "failures")
    assert list(failures["task_id"]) == [victim.id] and failures["attempt"].tolist() == [1]
    assert "InjectedFault" in failures["traceback"][0]
    assert victim.id not in set(read_table(out, "ising")["task_id"])
    assert len(read_table(out, "ising")) == plan.count("sample") - 1
    assert len(read_table(out, "rbm")) == plan.count("train") - 1
    assert main(["status", str(out)]) == 1
    status = capsys.readouterr().out.split()
    assert status[status.index("failed") + 1] == "1" and status[status.index("missing") + 1] == "1"

    monkeypatch.delenv("RGSWEEP_FAIL_TASKS")
    assert main(["run", str(spec_path), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    assert "2 run" in capsys.readouterr().out  # the failed task and its dependent, nothing else
    assert victim.id in set(read_table(out, "ising")["task_id"])
    assert len(read_table(out, "rbm")) == plan.count("train")
    assert main(["status", str(out)]) == 0


def test_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(QUICK.read_text().replace("burn_in = 1000", "burn_in = -1"))
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out)]
    result = subprocess.run(cli, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "sampling.burn_in must be an integer >= 0 and <= 1,000,000,000, got -1" in lines[0]
    assert not out.exists() and not (tmp_path / "results").exists()
    assert subprocess.run([sys.executable, "-m", "orchestrator.cli", "validate", str(spec)],
                          capture_output=True).returncode == 2


def test_validate_prints_task_count_and_estimate(capsys):
    assert main(["validate", str(QUICK)]) == 0
    out = capsys.readouterr().out
    assert f"tasks: {len(make_plan(load_spec(QUICK)))}" in out
    assert "predicted cost:" in out and "core-hours" in out and "critical path" in out
    assert "predicted wall time" in out and "largest task" in out


def test_adding_the_rbm_stage_later_trains_on_the_stored_samples(tmp_path, capsys):
    """Sample tasks done in an earlier run feed training tasks from the store: same tables as one run."""
    first = tmp_path / "first.toml"
    first.write_text(SMALL.split("[rbm]")[0])
    both = tmp_path / "both.toml"
    both.write_text(SMALL)
    staged, single = tmp_path / "staged", tmp_path / "single"
    assert main(["run", str(first), "--out", str(staged), "--backend", "serial", "--quiet"]) == 0
    assert main(["run", str(both), "--out", str(staged), "--backend", "process", "--workers", "2",
                 "--quiet"]) == 0
    plan = make_plan(load_spec(both))
    assert f"{plan.count('train')} run, {plan.count('sample')} skipped" in capsys.readouterr().out
    assert main(["run", str(both), "--out", str(single), "--backend", "serial", "--quiet"]) == 0
    a, b = tables_of(staged), tables_of(single)
    assert a.keys() == b.keys() and "rbm" in a
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)
