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


SLOW_NUM = 8


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory):
    """An undisturbed serial run of SLOW_SPEC, shared by the interrupted-run tests."""
    tmp = tmp_path_factory.mktemp("slow-reference")
    out = tmp / "out"
    spec = write(tmp, SLOW_SPEC.format(num=SLOW_NUM))
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
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
    holder = Store(out)
    holder.acquire_lock()  # a live driver (this process) holds OUT
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out), "--backend", "serial"]
    result = subprocess.run(cli, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"in use by another rgsweep run (pid {os.getpid()}" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing written
    holder.release_lock()

    # A lock file left by a driver that died is nobody's lock: the next run takes it.
    (out / LOCK).write_text(json.dumps({"pid": 1, "host": os.uname().nodename, "since": "then"}))
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    assert not (out / LOCK).exists()


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
def test_driver_killed_mid_sweep_resumes_to_identical_tables(tmp_path, backend, capsys, slow_reference):
    num = SLOW_NUM
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
    assert_same_tables(tables_of(out), slow_reference)
    assert len(read_table(out, "ising")) == num


def _pool_workers(driver_pid: int) -> list[int]:
    """The process pool's workers among the driver's children (not the resource tracker)."""
    found = []
    for pid in subprocess.run(["pgrep", "-P", str(driver_pid)], capture_output=True,
                              text=True).stdout.split():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(int(pid))
    return found


def _start_slow_driver(tmp_path: Path, backend: str, num: int):
    spec = write(tmp_path, SLOW_SPEC.format(num=num))
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out), "--quiet",
           "--backend", backend, "--workers", "2"]
    driver = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True, preexec_fn=_default_sigint)
    return spec, out, driver


def _default_sigint() -> None:
    """A driver started from a background job inherits SIGINT ignored (so a shell's Ctrl-C does
    not reach background work) and Python then keeps ignoring it; the driver here stands for
    one started in a terminal, where Ctrl-C arrives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_manifests(driver, out: Path, n: int) -> None:
    store, deadline = Store(out), time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None and len(store.manifests()) < n:
        time.sleep(0.05)
    assert driver.poll() is None, "the sweep ended before the fault could be injected"


def _session_alive(pgid: int) -> bool:
    """Whether any live (not zombie: a dead child waits to be reaped) process is in the group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("kill", ["one", "all-twice"])
def test_process_pool_survives_killed_workers(tmp_path, slow_reference, kill):
    """SIGKILL of one pool worker (what the OOM killer does), or of every worker and then of
    every worker of the new pool as soon as it is announced: the pool is replaced, the lost
    tasks rerun, the sweep finishes with exit 0 and the tables of an undisturbed serial run."""
    spec, out, driver = _start_slow_driver(tmp_path, "process", SLOW_NUM)
    try:
        _wait_for_manifests(driver, out, 1)
        victims = _pool_workers(driver.pid)
        assert victims, "no pool worker found"
        for pid in victims[:1] if kill == "one" else victims:
            os.kill(pid, signal.SIGKILL)
        first = ""
        if kill == "all-twice":
            first = driver.stderr.readline()  # the restart line: the new pool is starting
            assert "resubmitted to a new pool" in first, first
            for pid in _pool_workers(driver.pid):
                os.kill(pid, signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=300)
        stderr = first + stderr
    finally:
        if _session_alive(driver.pid):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, stderr
    assert "a worker process died" in stderr and "resubmitted to a new pool" in stderr
    assert "Traceback" not in stderr
    assert_same_tables(tables_of(out), slow_reference)


def test_a_pool_broken_before_a_submit_is_replaced_and_the_task_runs():
    """Every worker killed while the driver was not waiting: the next submit finds the pool
    broken (a plain pool raises BrokenProcessPool there); the task goes to a new pool."""
    from orchestrator.backends import ProcessBackend
    from orchestrator.spec import parse_spec
    from orchestrator.plan import make_plan

    task = next(iter(make_plan(parse_spec({"sweep": {"name": "b", "seed": 1, "lattice_sizes": [4],
                                                     "temperatures": [2.0]},
                                           "sampling": {"burn_in": 10, "samples": 20, "thin": 1}}))))
    backend = ProcessBackend(workers=1)
    backend.start()
    try:
        pids = list(backend.pool._processes)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not backend.pool._broken and time.monotonic() < deadline:  # the pool notices
            time.sleep(0.05)
        assert backend.pool._broken
        handle = backend.submit(task, {})
        (done,) = backend.wait([handle])
        assert backend.outcome(done).ok and backend.restarts == 1
    finally:
        backend.close(abort=True)


@pytest.mark.slow
# Ray is not here: with the CLI's handler put back after ray.init, a SIGTERM of a Ray driver ends
# in the one line and 143 in most trials, but Ray's core worker sometimes aborts on a failed
# internal check while the stop cancels its tasks (exit 1; the rerun still gives equal tables)
@pytest.mark.parametrize("backend,sig,burst", [("process", signal.SIGTERM, 5), ("serial", signal.SIGINT, 1)])
def test_signal_stops_cleanly_and_the_rerun_resumes(tmp_path, backend, sig, burst, slow_reference):
    """SIGTERM (as a burst of 5, as an impatient scheduler sends) or SIGINT: one line, exit
    128 + signal, no orphans, the lock released, and the rerun gives the undisturbed tables."""
    num = SLOW_NUM
    spec, out, driver = _start_slow_driver(tmp_path, backend, num)
    try:
        _wait_for_manifests(driver, out, 2)
        t0 = time.monotonic()
        for _ in range(burst):
            driver.send_signal(sig)
            time.sleep(0.02)
        _, stderr = driver.communicate(timeout=60)
        stopped_in = time.monotonic() - t0
        time.sleep(1.0)
        orphans = _session_alive(driver.pid)
    finally:
        if _session_alive(driver.pid):
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 128 + sig, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]  # Ray's auth notice is quiet too
    assert len(lines) == 1 and lines[0].startswith(f"rgsweep: stopped by {signal.Signals(sig).name}: ")
    assert "run the same command again to resume" in lines[0]
    assert not orphans  # no pool worker outlives the driver
    assert stopped_in < 30  # the work in flight is killed, not waited for (a sample task: ~2 s)
    assert not (out / LOCK).exists()
    saved = len(Store(out).manifests())
    assert f"{saved} of {num} done" in lines[0]
    assert main(["run", str(spec), "--out", str(out), "--backend", "process", "--workers", "2",
                 "--quiet"]) == 0
    assert_same_tables(tables_of(out), slow_reference)
