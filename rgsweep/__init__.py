"""rgsweep from Python (a notebook, a script): the same runs as the command line, with results as objects.

>>> import rgsweep
>>> spec = rgsweep.validate("sweeps/quick.toml")            # SpecError naming every broken rule
>>> rgsweep.forecast(spec, workers=64)["critical_path_s"]    # the cost model's prediction
>>> summary = rgsweep.run(spec, out="results/quick", backend="process", workers=2)
>>> ds = rgsweep.load(summary.out)                           # tables as pandas DataFrames
>>> ds.ising[["L", "T", "e", "e_err"]]
>>> rgsweep.report(summary.out)                              # OUT/report/index.html

The command line (``rgsweep run|validate|status|report``) does the same; its exit statuses map
to the exceptions here: bad input raises :class:`SpecError` or ``ValueError``, a sweep too
large for the machine :class:`ResourceError`, another live run on OUT :class:`LockError`, a
run stopped by Ctrl-C :class:`Interrupted` (everything finished is saved; its ``summary`` says
what), and a run with failed tasks returns normally with ``summary.failed`` set
(``summary.exit_code`` 1).
The implementation lives in the packages ``orchestrator`` (plans, runs, stores), ``workers``
(the computations) and ``analysis`` (reading and the report).
"""

from __future__ import annotations

import os
from pathlib import Path

from analysis.load import Dataset
from analysis.load import load as _load
from orchestrator import __version__
from orchestrator.plan import Plan, make_plan
from orchestrator.runner import (Interrupted, ResourceError, RunSummary, arguments_problem, default_out,
                                 run_sweep)
from orchestrator.spec import SpecError, SweepSpec, load_spec, parse_spec
from orchestrator.store import LockError

__all__ = ["run", "validate", "plan", "forecast", "load", "report", "SweepSpec", "RunSummary", "Dataset", "Plan",
           "SpecError", "ResourceError", "LockError", "Interrupted", "__version__"]


def validate(spec: str | os.PathLike | dict | SweepSpec) -> SweepSpec:
    """The validated spec: from a TOML file's path, a dict shaped like the TOML document, or a
    :class:`SweepSpec` (returned as is). Raises :class:`SpecError` naming every broken rule, one
    per line (key, value, rule), as ``rgsweep validate`` prints them."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec)
    if isinstance(spec, (str, os.PathLike)):
        return load_spec(Path(spec))
    raise TypeError(f"spec must be a path, a dict or a SweepSpec, got {type(spec).__name__}")


def plan(spec: str | os.PathLike | dict | SweepSpec) -> Plan:
    """Every task the spec makes (sampling, training, flows) with its content-hash id, in the order
    they run; ``len(plan(spec))`` is the task count that ``rgsweep validate`` prints. With
    ``[refine]``, the grid's tasks: the rounds add temperatures as the data decide."""
    return make_plan(validate(spec))


def run(spec: str | os.PathLike | dict | SweepSpec, out: str | os.PathLike | None = None,
        backend: str = "ray", workers: int | None = None, address: str | None = None,
        progress: bool = False, verify: bool = True, check: bool = True) -> RunSummary:
    """Run (or resume) a sweep and return its :class:`RunSummary` (``out``, ``total``, ``run``,
    ``skipped``, ``failed``, ``blocked``, ``damaged``, ``wall_s``, ``exit_code``).

    ``out`` defaults to ``results/<sweep.name>`` (a path or a URI such as ``s3://bucket/run``);
    ``backend`` is ``"ray"`` (an embedded local Ray on loopback, or the cluster at ``address``),
    ``"process"`` or ``"serial"``; ``workers`` defaults to all cores. ``progress`` prints the
    command line's start-up and progress lines on stderr. ``verify`` checks finished parts by
    SHA-256 before skipping them (else by size); ``check`` refuses, before writing anything, a
    sweep whose tasks do not fit this machine's memory or disk (:class:`ResourceError`).
    """
    from orchestrator.progress import Progress
    from orchestrator.scheduler import Callbacks

    spec = validate(spec)
    problem = arguments_problem(backend, workers, address)
    if problem:
        raise ValueError(problem)
    out = str(out) if out is not None else default_out(spec)
    callbacks = Progress(spec.name, backend, address=address) if progress else Callbacks()
    try:
        return run_sweep(spec, out, backend=backend, workers=workers, address=address,
                         callbacks=callbacks, verify=verify, check=check)
    finally:
        if progress:
            callbacks.close()


def forecast(spec: str | os.PathLike | dict | SweepSpec, workers: int | None = None,
             out: str | os.PathLike | None = None, backend: str = "ray") -> dict:
    """What ``rgsweep validate SPEC --workers N --json`` prints, as a dict: ``tasks``,
    ``core_seconds``, ``core_hours``, ``by_kind``, ``peak_memory_bytes`` (the largest task),
    ``critical_path_s``, ``predicted_wall_s`` (by worker count, as strings: 2 and ``workers``,
    default all cores), ``disk_bytes``. With ``out``, the tasks already done there count for
    nothing. Raises :class:`orchestrator.costs.CostModelError` without a cost model."""
    from orchestrator import forecast as _forecast
    from orchestrator.dryrun import done_ids
    from orchestrator.resources import machine
    from orchestrator.store import Store

    the_plan = plan(spec)
    done = set()
    if out is not None:
        done = done_ids(the_plan, Store(str(out)))
    counts = _forecast.worker_counts(backend, workers, machine(None).cores)
    return _forecast.forecast(the_plan, counts, done, backend=backend)


def load(out: str | os.PathLike) -> Dataset:
    """The results at ``out`` (a path or URI): ``load(OUT).ising``, ``.table(name)``,
    ``.configurations(L, T)``; only the rows of the last run's plan (docs/tables.md)."""
    return _load(out)


def report(out: str | os.PathLike, formats=("png",)) -> Path:
    """Write ``OUT/report/`` (index.html, summary.md, figures) and return the path of index.html;
    ``formats`` adds svg and/or pdf copies of every figure beside the PNGs the page shows."""
    from analysis.report import build_report

    return build_report(str(out), formats=tuple(formats))
