"""CPU seconds per phase of a task, for the cost model (``orchestrator.costs``).

A task's code marks its phases with ``with phase("fit"): ...``; phases nest, and time spent in an
inner phase is charged to the inner phase only, so the phases of a task add up to its CPU time.
:func:`run_phases` wraps one task: it returns what the task returned and ``{phase: CPU seconds}``
(``"other"`` for time outside every named phase). Outside :func:`run_phases`, :func:`phase` costs
two clock reads and records nothing.

CPU time (``time.process_time``: every thread of the process) rather than wall time: it is the
core-seconds a task costs, and it does not grow when other processes share the cores.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

__all__ = ["phase", "run_phases"]


class _Recording:
    def __init__(self):
        self.current, self.since, self.seconds = "other", time.process_time(), {}

    def charge(self, now: float) -> None:
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.since
        self.since = now


_state: _Recording | None = None  # the recording of the task running in this process, if any


@contextmanager
def phase(name: str):
    """Charge the CPU time of the block to ``name`` (nested phases take their own share)."""
    state = _state  # the recording this block entered; charged even if it has ended since
    if state is None:
        yield
        return
    state.charge(time.process_time())
    outer, state.current = state.current, name
    try:
        yield
    finally:
        state.charge(time.process_time())
        state.current = outer


def run_phases(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), {phase: CPU seconds})``. A nested call records its own phases
    and leaves the outer recording as it was."""
    global _state
    outer, _state = _state, _Recording()
    try:
        result = fn(*args, **kwargs)
        _state.charge(time.process_time())
        return result, {k: v for k, v in _state.seconds.items() if v > 0}
    finally:
        _state = outer
