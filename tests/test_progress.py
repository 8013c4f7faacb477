"""``rgsweep run`` says what it is doing: a line per start-up phase, then a bar on a terminal or
plain lines (no carriage returns) when stderr is a pipe or a file."""

from __future__ import annotations

import io
import subprocess
import sys

from orchestrator import progress as progress_module
from orchestrator.progress import Progress

SPEC = """
[sweep]
name = "progress"
seed = 2
lattice_sizes = [4]
temperatures = [2.0, 2.5, 3.0]
[sampling]
burn_in = 20
samples = 20
thin = 1
"""


def test_plain_lines_without_a_terminal(monkeypatch):
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    stream = io.StringIO()
    p = Progress("demo", "ray", stream=stream, terminal=False)
    p.started(3)
    p.ready()
    for _ in range(3):
        p.finished(None, True)
    p.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("rgsweep: 3 task(s) to run; starting Ray on loopback")
    assert lines[1].startswith("rgsweep: backend ray ready after")
    assert [line.split(" tasks done")[0] for line in lines[2:]] == ["rgsweep: 1/3", "rgsweep: 2/3", "rgsweep: 3/3"]
    assert "\r" not in stream.getvalue()


def test_lines_are_rate_limited_but_the_last_one_always_comes(monkeypatch):
    monkeypatch.setattr(progress_module, "EVERY_S", 3600.0)
    stream = io.StringIO()
    p = Progress("demo", "serial", address=None, stream=stream, terminal=False)
    p.started(50)
    p.ready()
    for _ in range(50):
        p.finished(None, True)
    done = [line for line in stream.getvalue().splitlines() if "tasks done" in line]
    assert done == [done[-1]] and "50/50 tasks done (100 %)" in done[-1]


def test_a_run_that_ends_short_still_gets_its_last_line(monkeypatch):
    """Tasks blocked by a failed dependency never finish: close() says where the run ended."""
    monkeypatch.setattr(progress_module, "EVERY_S", 3600.0)
    stream = io.StringIO()
    p = Progress("demo", "process", stream=stream, terminal=False)
    p.started(5)
    p.ready()
    p.finished(None, False)
    p.finished(None, True)
    p.close()
    p.close()  # idempotent
    done = [line for line in stream.getvalue().splitlines() if "tasks done" in line]
    assert done == ["rgsweep: 2/5 tasks done (40 %), 0 s elapsed"]


def test_quiet_says_nothing_and_nothing_to_run_says_nothing():
    stream = io.StringIO()
    p = Progress("demo", "ray", quiet=True, stream=stream, terminal=False)
    p.started(2), p.ready(), p.finished(None, True), p.finished(None, False)
    q = Progress("demo", "ray", stream=stream, terminal=False)
    q.started(0)
    assert stream.getvalue() == ""


def test_the_cli_through_a_pipe_prints_lines_not_a_bar(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    cli = [sys.executable, "-m", "orchestrator.cli", "run", str(spec), "--out", str(tmp_path / "out"),
           "--backend", "serial"]
    result = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("rgsweep: 3 task(s) to run (")
    assert "of CPU by the cost model); loading" in lines[0]
    assert lines[1].startswith("rgsweep: backend serial ready after")
    assert lines[-1].startswith("rgsweep: 3/3 tasks done (100 %; 100 % of the predicted work)")


def test_time_left_is_weighted_by_predicted_cost_not_by_task_count(monkeypatch):
    """Nine cheap tasks done of ten, the tenth predicted to cost as much as all of them: counts
    would say 90 % done; the predicted work says half, so as long again as so far is left."""
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))

    class T:
        def __init__(self, i):
            self.id, self.deps = str(i), ()

    stream = io.StringIO()
    p = Progress("demo", "serial", stream=stream, terminal=False)
    tasks = [T(i) for i in range(10)]
    p.planned(tasks, {**{str(i): 1.0 for i in range(9)}, "9": 9.0})
    p.started(10)  # the clock reads 1
    p.ready()  # reads 2 (its line) and 3 (the work starts)
    for task in tasks[:9]:
        p.finished(task, True)  # 4 ... 12: 9 s of work done in 9 s, 9 s predicted to go
    last = stream.getvalue().splitlines()[-1]
    assert "9/10 tasks done (90 %; 50 % of the predicted work), 11 s elapsed, about 9 s left" in last


def test_time_left_is_at_least_the_critical_path_left(monkeypatch):
    """Many workers finish the cheap tasks fast; a long task waiting on its inputs still has its
    whole predicted time to go, whatever the rate says; an ended run promises nothing."""
    monkeypatch.setattr(progress_module, "EVERY_S", 0.0)
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))

    class T:
        def __init__(self, i, deps=()):
            self.id, self.deps = str(i), deps

    tasks = [T(i) for i in range(20)] + [T("flow", tuple(str(i) for i in range(20)))]
    stream = io.StringIO()
    p = Progress("demo", "ray", stream=stream, terminal=False)
    p.planned(tasks, {**{str(i): 10.0 for i in range(20)}, "flow": 600.0})
    p.started(21)  # 1
    p.ready()  # 2, 3
    for task in tasks[:20]:
        p.finished(task, True)  # 4 ... 23: 200 s of predicted work in 20 s
    assert stream.getvalue().splitlines()[-1].endswith("about 10 min left")  # not 600 / 10 = 60 s
    monkeypatch.setattr(progress_module, "EVERY_S", 3600.0)
    p.finished(tasks[20], False)  # 24: the flow task failed; the run's last line promises nothing
    p.close()
    assert stream.getvalue().splitlines()[-1].startswith("rgsweep: 21/21 tasks done")
    assert "left" not in stream.getvalue().splitlines()[-1]
