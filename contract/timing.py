"""CPU seconds per phase of a task, for the cost model (``orchestrator.costs``).

A task's code marks its phases with ``with phase("fit"): ...``; phases nest, and time spent in an
inner phase is charged to the inner phase only, so the phases of a task add up to its CPU time.
:func:`run_phases` wraps one task: it returns what the task returned and ``{phase: CPU seconds}``
(``"other"`` for time outside every named phase). Outside :func:`run_phases`, :func:`phase` costs
two clock reads and records nothing.

CPU time (``time.process_time``: every thread of the process) rather than wall time: it is the
core-seconds a task costs, and it does not grow when other processes share the machine.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

__all__ = ["phase", "run_phases"]

_state: dict | None = None  # {"current": name, "since": t, "seconds": {name: s}} while recording


def _charge(now: float) -> None:
    seconds = _state["seconds"]
    seconds[_state["current"]] = seconds.get(_state["current"], 0.0) + now - _state["since"]
    _state["since"] = now


@contextmanager
def phase(name: str):
    """Charge the CPU time of the block to ``name`` (nested phases take their own share)."""
    if _state is None:
        yield
        return
    _charge(time.process_time())
    outer, _state["current"] = _state["current"], name
    try:
        yield
    finally:
        _charge(time.process_time())
        _state["current"] = outer


def run_phases(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), {phase: CPU seconds})``; not reentrant (one task per process)."""
    global _state
    _state = {"current": "other", "since": time.process_time(), "seconds": {}}
    try:
        result = fn(*args, **kwargs)
        _charge(time.process_time())
        return result, {k: v for k, v in _state["seconds"].items() if v > 0}
    finally:
        _state = None
