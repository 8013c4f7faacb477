"""Orchestration suite: a whole small sweep through ``rgsweep run`` against a plain loop over the
same task functions, and the driver's peak memory."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time

from orchestrator.scheduler import Callbacks

from .common import note, record, repeat

__all__ = ["suite_orchestration"]


def _spec(name, Ls, temps, burn_in, samples, thin):
    from orchestrator.spec import parse_spec
    return parse_spec({"sweep": {"name": name, "seed": 1, "lattice_sizes": list(Ls),
                                 "temperatures": list(temps)},
                       "sampling": {"algorithm": "metropolis", "burn_in": burn_in,
                                    "samples": samples, "thin": thin}})


# VmHWM, not getrusage's ru_maxrss: the latter survives exec, so a child would report the
# peak of the (much larger) benchmark process that started it
_PEAK_RSS = """
import sys
from contract.configs import SampleConfig
from workers.tasks import sample_task
config = SampleConfig(L=64, T=2.269185, algorithm=sys.argv[2], burn_in=10, samples=int(sys.argv[1]), thin=1,
                      symmetrize=False, seed=1)
sample_task(config, (0,), {})
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024.0)
"""


class _Clock(Callbacks):
    """When the backend was up, and when each task came back."""

    def __init__(self, ready: list, committed: list):
        self.ready_at, self.committed_at = ready, committed

    def ready(self) -> None:
        self.ready_at.append(time.perf_counter())

    def finished(self, task, ok: bool) -> None:
        self.committed_at.append(time.perf_counter())


def suite_orchestration(quick: bool) -> list[dict]:
    from orchestrator.plan import make_plan
    from orchestrator.runner import run_sweep
    from orchestrator.store import Store

    out = []
    # planning + skip-check of a sweep whose results all exist (manifests only: no re-hash)
    n_temps = 250 if quick else 2500
    spec = _spec("skip", (8, 16, 32, 64), [1.5 + 2.0 * i / n_temps for i in range(n_temps)],
                 10, 10, 1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        for task in make_plan(spec):
            path = store.manifest_path(task.kind, task.L, task.id)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("{}")

        def skip_check():
            t0 = time.perf_counter()
            plan = make_plan(spec)
            done = set(Store(tmp).manifests())
            todo = [t for t in plan if t.id not in done]
            assert not todo
            return time.perf_counter() - t0
        out.append(record("orchestration", "rgsweep", {"n_tasks": 4 * n_temps},
                           "plan_and_skip_check", "s", repeat(skip_check, 3)))
    # throughput of 1 and 2 workers on a sweep of coarse tasks
    # full: 16 tasks of ~2 s each (130,000 sweeps at L = 64), long enough that Ray's worker
    # start-up transient (a few seconds) does not dominate; quick: 4 tiny ones
    coarse = (_spec("coarse", (16,), [2.0 + 0.1 * i for i in range(4)], 200, 20, 5) if quick else
              _spec("coarse", (64,), [2.0 + 0.05 * i for i in range(16)], 10_000, 2_000, 60))
    backends = ["process"]
    if importlib.util.find_spec("ray") is not None:  # only backends.py imports Ray (README, "Layout")
        backends.append("ray")
    else:
        note("ray not installed: the ray backend is skipped")
    if quick and "ray" in backends:
        backends.remove("ray")
        note("--quick: the ray backend is skipped (starting Ray alone takes seconds)")
    for backend in backends:
        rates = {}
        for workers in (1, 2):
            ready, committed = [], []
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run_sweep(coarse, tmp, backend=backend, workers=workers, callbacks=_Clock(ready, committed))
                t1 = time.perf_counter()
            # Throughput from the moment the backend is up to the last task committed. Start-up
            # and teardown are fixed costs that a long sweep amortises, reported on their own,
            # so that the ratio measures how the task work scales.
            rates[workers] = len(make_plan(coarse)) / (committed[-1] - ready[0])
            params = {"workers": workers}
            out.append(record("orchestration", f"rgsweep-{backend}", params,
                               "startup", "s", [ready[0] - t0]))
            out.append(record("orchestration", f"rgsweep-{backend}", params,
                               "teardown", "s", [t1 - committed[-1]]))
            out.append(record("orchestration", f"rgsweep-{backend}", params,
                               "throughput", "tasks/s", [rates[workers]]))
        out.append(record("orchestration", f"rgsweep-{backend}", {"workers": 2},
                           "speedup_2_vs_1_workers", "x", [rates[2] / rates[1]]))
    # peak memory of one worker process running one sampling task at L = 64
    n_samples = 1000 if quick else 10_000
    for algorithm in ("metropolis", "multispin"):
        result = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(n_samples), algorithm],
                                capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if result.returncode != 0:
            note(f"peak-memory run failed: {result.stderr.strip().splitlines()[-1:]}")
            continue
        out.append(record("orchestration", f"rgsweep-{algorithm}",
                           {"L": 64, "n_samples": n_samples}, "worker_peak_rss", "MB",
                           [float(result.stdout.strip().splitlines()[-1])]))
    return out

