"""What ``rgsweep run`` says while it works, on stderr: a line per start-up phase, then a progress
bar on a terminal, or plain lines (at most one per ``EVERY_S`` seconds, and one at the end) when
stderr is a file or a pipe (``ray job logs``, SLURM, ``nohup``), where a bar's carriage returns
would pile up on one line.
"""

from __future__ import annotations

import sys
import time

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
        self.t0 = self.last = time.monotonic()

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(f"rgsweep: {text}", file=self.stream, flush=True)

    def started(self, n_to_run: int) -> None:
        self.total, self.t0 = n_to_run, time.monotonic()
        if not n_to_run:
            return
        what = {"ray": f"joining Ray at {self.address}" if self.address else "starting Ray on loopback",
                "process": "starting the worker processes", "serial": "loading"}.get(self.backend, "starting")
        self._say(f"{n_to_run} task(s) to run; {what} and compiling the kernels (cached after the "
                  "first run) ...")

    def ready(self) -> None:
        self.ready_seen = True
        self._say(f"backend {self.backend} ready after {time.monotonic() - self.t0:.1f} s; running")
        if self.terminal and not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit="task", desc=f"rgsweep {self.name}",
                            dynamic_ncols=True, file=self.stream)
        self.last = time.monotonic()

    def finished(self, task, ok: bool) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= EVERY_S or self.count == self.total:
            self._line(now)

    def _line(self, now: float) -> None:
        self.last, self.said = now, self.count
        self._say(f"{self.count}/{self.total} tasks done ({100 * self.count / self.total:.0f} %), "
                  f"{now - self.t0:.0f} s elapsed")

    def close(self) -> None:
        """End the bar; without a terminal, a last line if the last one is not up to date (tasks
        blocked by a failed dependency never finish, an interrupted run stops short)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.total and self.ready_seen and self.said != self.count:
            self._line(time.monotonic())
