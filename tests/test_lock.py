"""The OUT lock: never held twice, released by the kernel when its holder dies."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest

from orchestrator.store import LOCK, LockError, Store

PROCESSES, TRIALS = 4, 200


def _contend(out, barrier, results, index):
    """One contender: every trial, all contenders try at once (barrier); a holder proves it is
    alone by creating a marker file with O_EXCL, holds briefly, removes it and lets go."""
    marker = os.path.join(out, "holder")
    got = overlaps = 0
    for _ in range(TRIALS):
        barrier.wait()
        store = Store(out)
        try:
            store.acquire_lock()
        except LockError:
            continue
        got += 1
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps += 1
        else:
            time.sleep(0.0002)
            os.close(fd)
            os.unlink(marker)
        store.release_lock()
    results[index] = (got, overlaps)


def test_lock_is_never_held_twice(tmp_path):
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Manager().dict()
    procs = [ctx.Process(target=_contend, args=(str(tmp_path), barrier, results, i))
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    got = sum(r[0] for r in results.values())
    overlaps = sum(r[1] for r in results.values())
    assert overlaps == 0
    # every trial somebody wins, and the losers really lost (not every contender every time)
    assert TRIALS <= got < PROCESSES * TRIALS
    assert not (tmp_path / LOCK).exists()


def test_second_store_is_refused_with_the_holder_named(tmp_path):
    first, second = Store(tmp_path), Store(tmp_path)
    first.acquire_lock()
    with pytest.raises(LockError, match=rf"in use by another rgsweep run \(pid {os.getpid()} "):
        second.acquire_lock()
    second.release_lock()  # not held: must not remove the holder's lock file
    assert (tmp_path / LOCK).exists()
    first.release_lock()
    assert not (tmp_path / LOCK).exists()
    second.acquire_lock()
    second.release_lock()


def test_lock_of_a_killed_driver_is_free_at_once(tmp_path):
    code = ("import sys, time; from orchestrator.store import Store; s = Store(sys.argv[1]); "
            "s.acquire_lock(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockError, match=f"pid {proc.pid} "):
            Store(tmp_path).acquire_lock()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / LOCK).exists()  # left behind, but nobody holds it
    store = Store(tmp_path)
    store.acquire_lock()
    store.release_lock()


def test_lock_file_that_is_a_link_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).symlink_to(outside)
    with pytest.raises(Exception, match="symbolic link"):
        Store(out).acquire_lock()
    assert outside.read_text() == "keep"
