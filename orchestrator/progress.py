"""What ``rgsweep run`` says while it works, on stderr: a line per start-up phase, then a progress
bar on a terminal, or plain lines (at most one per ``EVERY_S`` seconds, and one at the end) when
stderr is a file or a pipe (``ray job logs``, SLURM, ``nohup``), where a bar's carriage returns
would pile up on one line.

The time left is weighted by the cost model (:mod:`orchestrator.costs`), not by task counts: a
sweep's first tasks are its cheap sampling tasks, so counts would promise far too little. It is
the larger of two figures: the predicted core-seconds still to run divided by the rate at which
predicted core-seconds have been finishing (which corrects itself for this machine's speed and
its number of workers), and the longest chain of unfinished dependent tasks (the critical path
left, as predicted; on many workers a long last task is what the run waits for).
"""

from __future__ import annotations

import sys
import time

from .forecast import critical_path, duration
from .scheduler import Callbacks

__all__ = ["Progress", "EVERY_S"]

#: Seconds between two plain progress lines without a terminal.
EVERY_S = 30.0


class Progress(Callbacks):
    """Progress of one run of sweep ``name`` on ``backend``; ``quiet`` keeps only the start-up
    lines off as well (nothing is printed)."""

    def __init__(self, name: str, backend: str, quiet: bool = False, address: str | None = None,
                 stream=None, terminal: bool | None = None):
        self.name, self.backend, self.quiet, self.address = name, backend, quiet, address
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.bar, self.total, self.count, self.said, self.ready_seen = None, 0, 0, -1, False
        self.t0 = self.last = self.t_ready = time.monotonic()
        self.predicted: dict[str, float] = {}
        self.tasks: list = []
        self.finished_ids: set[str] = set()
        self.work_total = self.work_done = 0.0
        self.engine_up = False  # the rounds of an adaptive sweep share one backend

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"rgsweep: {text}", file=self.stream, flush=True)

    def planned(self, tasks: list, predicted: dict[str, float]) -> None:
        self.tasks, self.predicted = list(tasks), dict(predicted)
        self.work_total = sum(self.predicted.values())

    def note(self, text: str) -> None:
        self.close()
        self._say(text)

    def started(self, n_to_run: int) -> None:
        self.total, self.t0 = n_to_run, time.monotonic()
        self.count, self.said, self.ready_seen, self.work_done = 0, -1, False, 0.0
        self.finished_ids = set()
        if not n_to_run:
            return
        if self.engine_up:
            about = "" if self.work_total < 1 else "about "
            self._say(f"{n_to_run} task(s) to run" + (f" ({about}{duration(self.work_total)} of CPU by the "
                                                      "cost model)" if self.work_total else ""))
            return
        what = {"ray": f"joining Ray at {self.address}" if self.address else "starting Ray on loopback",
                "process": "starting the worker processes", "serial": "loading"}.get(self.backend, "starting")
        cost = ""
        if self.work_total:
            cost = f" ({'' if self.work_total < 1 else 'about '}{duration(self.work_total)} of CPU by the cost model)"
        self._say(f"{n_to_run} task(s) to run{cost}; {what} and compiling the kernels (cached after the "
                  "first run) ...")

    def ready(self) -> None:
        self.ready_seen = True
        if not self.engine_up:
            self._say(f"backend {self.backend} ready after {time.monotonic() - self.t0:.1f} s; running")
        self.engine_up = True
        if self.terminal and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="task", desc=f"rgsweep {self.name}",
                            dynamic_ncols=True, file=self.stream,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} tasks "
                                       "[{elapsed}{postfix}]")
        self.last = self.t_ready = time.monotonic()

    def left_s(self, now: float) -> float | None:
        """Seconds left (None before the first task with a prediction finishes): the larger of
        the predicted work to go over the rate of predicted work done, and the predicted critical
        path of the unfinished tasks (tasks in flight count whole)."""
        if self.work_done <= 0 or now <= self.t_ready:
            return None
        rate = self.work_done / (now - self.t_ready)  # predicted core-seconds finished per second
        return max(max(self.work_total - self.work_done, 0.0) / rate,
                   critical_path(self.tasks, self.predicted, self.finished_ids))

    def finished(self, task, ok: bool) -> None:
        self.count += 1
        self.work_done += self.predicted.get(getattr(task, "id", None), 0.0)
        self.finished_ids.add(getattr(task, "id", None))
        if self.bar is not None:
            left = self.left_s(time.monotonic())
            if left is not None:
                self.bar.set_postfix_str(f"about {duration(left)} left", refresh=False)
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= EVERY_S or self.count == self.total:
            self._line(now)

    def _line(self, now: float, final: bool = False) -> None:
        self.last, self.said = now, self.count
        left = self.left_s(now) if self.count < self.total and not final else None
        work = (f"; {100 * self.work_done / self.work_total:.0f} % of the predicted work"
                if self.work_total else "")
        self._say(f"{self.count}/{self.total} tasks done ({100 * self.count / self.total:.0f} %{work}), "
                  f"{now - self.t0:.0f} s elapsed" + (f", about {duration(left)} left" if left is not None else ""))

    def close(self) -> None:
        """End the bar; without a terminal, a last line if the last one is not up to date (tasks
        blocked by a failed dependency never finish, an interrupted run stops short)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.total and self.ready_seen and self.said != self.count:
            self._line(time.monotonic(), final=True)

