"""Failures of the machine (disk full, read-only OUT, OUT a file): one line naming the path and
the cause, exit status 3, committed results intact, and a rerun finishes the sweep."""

from __future__ import annotations

import subprocess

import pytest

from orchestrator.cli import EXIT_ENVIRONMENT, main

from test_faults import assert_same_tables
from test_run import tables_of

SPEC = """
[sweep]
name = "env"
seed = 3
lattice_sizes = [8]
temperatures = [2.0, 2.5, 3.0]
[sampling]
burn_in = 50
samples = 3000
thin = 1
"""


@pytest.fixture()
def small_disk(tmp_path):
    """A 150 KiB tmpfs of our own (root only; skipped elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=150k", "tmpfs", str(mnt)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _run(spec, out, *extra):
    # these tests are about a disk that fails during the run, which the up-front estimate cannot
    # rule out (another process fills it, an estimate is low): the check is off here and tested
    # on its own in test_disk_estimate_refuses_before_writing
    return main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet",
                 "--no-resource-check", *extra])


def _one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_disk_full_then_space_freed_resumes(tmp_path, small_disk, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = small_disk / "out"
    assert _run(spec, out) == EXIT_ENVIRONMENT
    line = _one_error_line(capsys)
    assert line.startswith(f"rgsweep: error: {out}/") and "No space left on device" in line
    assert "results committed before it are intact" in line
    done = len(list((out / "_tasks").rglob("*.json")))
    assert done < 3
    subprocess.run(["mount", "-o", "remount,size=50m", str(small_disk)], check=True)
    assert _run(spec, out) == 0
    assert f"{3 - done} run, {done} skipped" in capsys.readouterr().out
    reference = tmp_path / "reference"
    assert _run(spec, reference) == 0
    assert_same_tables(tables_of(out), tables_of(reference))


def test_disk_estimate_refuses_before_writing(tmp_path, small_disk, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = small_disk / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "the results need about" in line and "of disk, more than the" in line
    assert "free for OUT" in line and "--no-resource-check" in line
    assert not out.exists() and not any(small_disk.iterdir())


def test_read_only_out(tmp_path, small_disk, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("samples = 3000", "samples = 100"))
    out = small_disk / "out"
    assert _run(spec, out) == 0
    before = tables_of(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    capsys.readouterr()
    assert _run(spec, out) == EXIT_ENVIRONMENT
    assert "Read-only file system" in _one_error_line(capsys)
    assert _run(spec, small_disk / "new") == EXIT_ENVIRONMENT
    assert f"{small_disk / 'new'}: Read-only file system" in _one_error_line(capsys)
    assert_same_tables(tables_of(out), before)


def test_damaged_part_in_a_read_only_folder_is_kept_until_it_can_be_moved(tmp_path, capsys):
    """A damaged part that cannot be moved aside (its folder a read-only bind mount, which binds
    root too and makes the rename cross a mount): exit 3 naming the file, nothing recomputed
    over it, and once the folder is back the next run moves it under _damaged/ and recomputes."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("samples = 3000", "samples = 100"))
    out, reference = tmp_path / "out", tmp_path / "reference"
    assert _run(spec, out) == 0 and _run(spec, reference) == 0
    folder = out / "ising" / "L8"
    part = sorted(folder.glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:50])
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        capsys.readouterr()
        assert _run(spec, out) == EXIT_ENVIRONMENT
        line = _one_error_line(capsys)
        assert line.startswith("rgsweep: error: ") and f"Failed renaming '{part}'" in line, line
        assert "results committed before it are intact" in line
    finally:
        subprocess.run(["umount", str(folder)], check=True)
    assert part.stat().st_size == 50  # still there, still damaged: never recomputed over
    assert _run(spec, out) == 0
    assert "1 damaged and recomputed" in capsys.readouterr().out
    kept = list((out / "_damaged").glob(f"*/ising/L8/{part.name}"))
    assert len(kept) == 1 and kept[0].stat().st_size == 50
    assert_same_tables(tables_of(out), tables_of(reference))


def test_out_that_is_a_file(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "a-file"
    out.write_text("mine\n")
    assert _run(spec, out) == EXIT_ENVIRONMENT
    assert _one_error_line(capsys) == f"rgsweep: error: {out} exists and is not a folder; choose another --out"
    assert out.read_text() == "mine\n"


def test_stdout_closed_by_its_reader_is_not_a_failure(tmp_path):
    """`rgsweep run SPEC | head -1`: the reader goes away before the closing lines; the run is
    saved and exits 0 without a word on stderr (it was exit 3, '?: Broken pipe')."""
    import sys

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("samples = 3000", "samples = 100"))
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(out),
                               "--backend", "serial", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    driver.stdout.close()  # the reader is gone before anything is printed
    stderr = driver.stderr.read().decode()
    assert driver.wait(timeout=300) == 0 and stderr == ""
    assert main(["status", str(out)]) == 0


def test_releasing_the_lock_on_a_disk_turned_read_only_does_not_hide_the_real_error(tmp_path):
    """OUT turned read-only mid-run: the run's own error is reported; the lock file, which can no
    longer be removed, must not replace it (its flock goes with the descriptor anyway)."""
    from orchestrator.store import LOCK, Store

    out = tmp_path / "out"
    store = Store(out)
    store.acquire_lock()
    if subprocess.run(["mount", "--bind", str(out), str(out)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(out)], check=True)
        store.release_lock()  # no exception
        assert store._lock_fd is None and (out / LOCK).exists()
    finally:
        subprocess.run(["umount", str(out)], check=True)
    other = Store(out)
    other.acquire_lock()  # the leftover file is not held by anyone
    other.release_lock()
