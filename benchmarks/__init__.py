"""``rgsweep bench``: rgsweep's samplers, trainer and sweeps timed against what a user would use.

Benchmarks are programs, not tests: they print tables and, with ``--json``, write a list of
records ``{"suite", "impl", "params", "metric", "unit", "median", "min", "max", "n"}``; nothing
here ever fails on speed. ``impl`` is ``rgsweep`` (or ``rgsweep-<variant>``) for ours and the
peer's package name otherwise; peers (isingenerator, ising-rs, scikit-learn, PyTorch CPU, the
optional ``bench`` extra) run in the same process when installed and are skipped with a note
when not. Ratios ("x" records, ``speedup_vs_<peer>``) are computed pair by pair in one run.

Everything is one thread: BLAS and PyTorch are pinned to one thread (parallelism in rgsweep
comes from tasks). Each figure is the median of several repeats; on a shared machine they are
noisy. ``--quick`` shrinks every problem so that all suites run in well under a minute (a CI
smoke test); its figures mean little. This package sits beside the three layers: it
imports the workers' kernels and the peers; ``orchestrator`` imports it only when ``rgsweep bench``
runs.
"""

from __future__ import annotations

import sys

from .common import note, print_table, ratios, write_json
from .ais import suite_ais
from .rbm import suite_rbm
from .samplers import suite_metropolis, suite_multispin, suite_scaling, suite_wolff
from .costs import suite_sweep
from .sweeps import suite_orchestration

__all__ = ["SUITES", "run_bench"]

SUITES = {"metropolis": suite_metropolis, "multispin": suite_multispin, "wolff": suite_wolff,
          "rbm": suite_rbm, "orchestration": suite_orchestration, "scaling": suite_scaling,
          "sweep": suite_sweep, "ais": suite_ais}


def run_bench(suites: list[str], quick: bool, json_path: str | None, sweep_options: dict | None = None) -> int:
    """Run the named suites (all if empty), print a table each, optionally write JSON records.
    ``sweep_options`` go to the sweep suite (:func:`benchmarks.costs.suite_sweep`).

    Returns the exit status: 0, or 2 for an unknown suite name (nothing is run).
    """
    names = list(suites) or list(SUITES)
    unknown = [s for s in names if s not in SUITES]
    if unknown:
        print(f"rgsweep: error: unknown bench suite {unknown[0]!r}; choose from "
              f"{', '.join(SUITES)}", file=sys.stderr)
        return 2
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(1)
    except ImportError:
        limiter = None
        note("threadpoolctl not installed: BLAS thread count not pinned")
    records = []
    try:
        for name in names:
            print(f"running suite {name}{' (quick)' if quick else ''} ...", flush=True)
            found = SUITES[name](quick, **(sweep_options or {})) if name == "sweep" else SUITES[name](quick)
            found += ratios(found)
            print_table(name, found)
            records += found
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    if json_path:
        write_json(json_path, records)
        print(f"\nwrote {len(records)} records to {json_path}")
    return 0
