"""Smoke test of ``rgsweep bench --quick``: every suite runs and writes valid JSON records.

Benchmarks are programs: nothing here looks at a timing, only at the shape of the records.
"""

import json
import math
import subprocess
import sys

import pytest

from benchmarks import SUITES, run_bench

KEYS = {"suite", "impl", "params", "metric", "unit", "median", "min", "max", "n"}
PEERS = {"isingenerator", "ising-rs", "torch", "scikit-learn", "numpy-float64"}


def test_benchmarks_import_without_numba_or_workers_until_a_suite_runs():
    code = ("import sys, benchmarks; "
            "bad = [m for m in ('numba', 'workers', 'torch', 'sklearn') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_unknown_suite_is_bad_input(tmp_path, capsys):
    assert run_bench(["metropolis", "nope"], True, str(tmp_path / "b.json")) == 2
    assert "unknown bench suite 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.slow
def test_quick_bench_writes_valid_records_for_every_suite(tmp_path):
    # Through the CLI in its own process, as a user runs it (peer packages change global state
    # at import: one turns on matplotlib's usetex).
    path = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "-m", "orchestrator.cli", "bench", "--quick", "--json", str(path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    records = json.loads(path.read_text())
    assert isinstance(records, list) and records
    for r in records:
        assert set(r) == KEYS, r
        assert r["suite"] in SUITES
        assert r["impl"] == "rgsweep" or r["impl"].startswith("rgsweep-") or r["impl"] in PEERS
        assert isinstance(r["params"], dict) and r["params"]
        assert isinstance(r["metric"], str) and isinstance(r["unit"], str)
        assert isinstance(r["n"], int) and r["n"] >= 1
        assert all(math.isfinite(r[k]) for k in ("median", "min", "max"))
        assert r["min"] <= r["median"] <= r["max"]
        if r["suite"] in ("metropolis", "multispin", "wolff", "scaling") and "L" in r["params"]:
            assert {"L", "T"} <= set(r["params"])
        if r["suite"] == "rbm":
            assert set(r["params"]) == {"n_visible", "n_hidden", "batch"}
    assert {r["suite"] for r in records} == set(SUITES)  # every suite produced records
    ours = {(r["suite"], r["metric"]) for r in records if r["impl"].startswith("rgsweep")}
    for needed in [("metropolis", "time_per_flip"), ("multispin", "time_per_replica_flip"),
                   ("wolff", "time_per_flipped_spin"), ("rbm", "cd1_throughput"),
                   ("orchestration", "plan_and_skip_check"), ("orchestration", "worker_peak_rss"),
                   ("scaling", "loglog_slope_time_per_sweep"),
                   ("scaling", "independent_samples_per_s")]:
        assert needed in ours, needed
    out = result.stdout
    for suite in SUITES:
        assert f"== {suite} ==" in out
