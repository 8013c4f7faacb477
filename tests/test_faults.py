"""Fault tolerance: damaged parts, a killed driver, two drivers, a spec changed under OUT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis import read_table
from orchestrator.cli import main
from orchestrator.store import LOCK, Store

from test_run import tables_of

SPEC = """
[sweep]
name = "faults"
seed = 9
lattice_sizes = [8]
temperatures = [2.0, 2.5, 3.0]
[sampling]
burn_in = 200
samples = 300
thin = 2
[rbm]
n_hidden = [6]
epochs = 3
"""

SLOW_SPEC = """
[sweep]
name = "slow"
seed = 4
lattice_sizes = [32]
temperatures = {{ start = 2.0, stop = 3.0, num = {num} }}
[sampling]
burn_in = 2000
samples = 3000
thin = 20
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An undisturbed serial run of SPEC, for comparison."""
    tmp = tmp_path_factory.mktemp("reference")
    out = tmp / "out"
    assert main(["run", str(write(tmp, SPEC)), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return tables_of(out)


def assert_same_tables(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)


def part_of(out: Path, table: str) -> Path:
    return sorted((out / table).rglob("part-*.parquet"))[0]


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_part_is_named_moved_aside_and_recomputed(tmp_path, reference, damage, capsys):
    spec = write(tmp_path, SPEC)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    victim = part_of(out, "samples")
    original = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(original[: len(original) // 2])
    else:  # same size, different bytes: only the checksum can tell
        middle = len(original) // 2
        victim.write_bytes(original[:middle] + bytes(b ^ 0xFF for b in original[middle:middle + 16])
                           + original[middle + 16:])
    capsys.readouterr()
    assert main(["status", str(out)]) == 1
    status = capsys.readouterr().out
    assert "damaged 1" in " ".join(status.split()) and victim.name in status

    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert victim.name in captured.err and "moved aside" in captured.err
    assert "1 run" in captured.out  # only the damaged task is recomputed
    moved = list((out / "_damaged").glob(f"*/samples/{victim.parent.name}/{victim.name}"))
    assert len(moved) == 1 and moved[0].read_bytes() != original  # kept as found, not deleted
    assert victim.read_bytes() == original  # recomputed bit for bit
    assert_same_tables(tables_of(out), reference)
    assert main(["status", str(out)]) == 0


def test_a_second_driver_refuses_while_the_first_is_alive(tmp_path, capsys):
    spec = write(tmp_path, SPEC)
    out = tmp_path / "out"
    out.mkdir()
    lock = out / LOCK
    lock.write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "since": "now"}))
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out), "--backend", "serial"]
    result = subprocess.run(cli, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"in use by another rgsweep run (pid {os.getpid()}" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written

    # A lock left by a driver that died (same host, no such process) is taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    lock.write_text(json.dumps({"pid": int(dead), "host": os.uname().nodename, "since": "then"}))
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    assert not lock.exists()


def test_changed_spec_gets_new_ids_keeps_history_and_overwrites_nothing(tmp_path, capsys):
    first = write(tmp_path, SPEC, "a.toml")
    out = tmp_path / "out"
    assert main(["run", str(first), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    before = {str(p): p.read_bytes() for p in out.rglob("*.parquet")}
    second = write(tmp_path, SPEC.replace("burn_in = 200", "burn_in = 250"), "b.toml")
    assert main(["run", str(second), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    after = {str(p): p.read_bytes() for p in out.rglob("*.parquet")}
    assert all(after[p] == blob for p, blob in before.items())  # every old part untouched
    assert len(after) == 2 * len(before)  # every task of the new spec is new
    record = json.loads((out / "sweep.json").read_text())
    assert record["spec"]["sampling"]["burn_in"] == 250
    assert [h["spec"]["sampling"]["burn_in"] for h in record["history"]] == [200]
    capsys.readouterr()
    assert main(["status", str(out)]) == 0
    status = capsys.readouterr().out
    assert "stale   6 finished tasks of an earlier spec or code version" in status
    # the loaders return the current spec's results only, unless asked for the stale ones
    from analysis.load import read_table
    ising = read_table(out, "ising")
    assert len(ising) == 3 and set(ising["burn_in"]) == {250}
    assert len(read_table(out, "ising", stale=True)) == 6


def _kill_mid_sweep(tmp_path: Path, backend: str, num: int) -> tuple[Path, int]:
    spec = write(tmp_path, SLOW_SPEC.format(num=num))
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out), "--quiet",
           "--backend", backend, "--workers", "2"]
    driver = subprocess.Popen(cli, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    store = Store(out)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            if len(store.manifests()) >= 2:
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the sweep ended before it could be interrupted"
        done_at_kill = len(store.manifests())
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        try:  # the driver's pool workers / Ray processes, all in the session this test started
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert 2 <= done_at_kill < num
    return spec, done_at_kill


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["process", pytest.param("ray", marks=pytest.mark.ray)])
def test_driver_killed_mid_sweep_resumes_to_identical_tables(tmp_path, backend, capsys):
    num = 8
    spec, done_at_kill = _kill_mid_sweep(tmp_path, backend, num)
    out = tmp_path / "out"
    assert (out / LOCK).exists()  # left behind by the killed driver: stale
    survived = len(Store(out).manifests())
    assert survived >= done_at_kill
    assert main(["run", str(spec), "--out", str(out), "--backend", "process", "--workers", "2",
                 "--quiet"]) == 0
    ran = int(capsys.readouterr().out.split(" run,")[0].rsplit(" ", 1)[1])
    assert ran == num - survived  # only the missing tasks run again
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary file survives
    reference = tmp_path / "reference"
    assert main(["run", str(spec), "--out", str(reference), "--backend", "serial", "--quiet"]) == 0
    assert_same_tables(tables_of(out), tables_of(reference))
    assert len(read_table(out, "ising")) == num
