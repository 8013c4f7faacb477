"""``rgsweep bench``: time rgsweep's samplers and RBM trainer against what a user would pick instead.

Benchmarks are programs, not tests: they print tables and, with ``--json``, write a list of
records ``{"suite", "impl", "params", "metric", "unit", "median", "min", "max", "n"}``; nothing
here ever fails on speed. ``impl`` is ``rgsweep`` (or ``rgsweep-<variant>``) for ours and the
peer's package name otherwise; peers (isingenerator, ising-rs, scikit-learn, PyTorch CPU, the
optional ``bench`` extra) run in the same process when installed and are skipped with a note
when not. Ratios ("x" records, ``speedup_vs_<peer>``) are computed pair by pair in one run.

Everything is one thread: BLAS and PyTorch are pinned to one thread (parallelism in rgsweep
comes from tasks). Each figure is the median of several repeats; on a shared machine they are
noisy. ``--quick`` shrinks every problem so that all suites run in well under a minute (a CI
smoke test); its figures mean little. This module imports numba, numpy-heavy code and the
peers lazily, so ``orchestrator`` stays importable without numba (README, "Layout").
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

from .spec import TC

__all__ = ["SUITES", "run_bench"]

RBM_SIZES = ((256, 64), (256, 256), (1024, 64), (1024, 256))


def _record(suite, impl, params, metric, unit, values) -> dict:
    values = [float(v) for v in values]
    return {"suite": suite, "impl": impl, "params": params, "metric": metric, "unit": unit,
            "median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def _note(message: str) -> None:
    print(f"  note: {message}", flush=True)


def _repeat(fn: Callable[[], float], n: int) -> list[float]:
    """``n`` calls of ``fn``, each returning one figure (after one untimed warm-up call)."""
    fn()
    return [fn() for _ in range(n)]


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --- samplers ----------------------------------------------------------------------------------

def _grid(quick):
    return ((16,), (TC,)) if quick else ((64, 256), (1.5, TC, 3.5))


def _sweeps_for(L, budget_flips):
    return max(2, int(budget_flips / (L * L)))


def suite_metropolis(quick: bool) -> list[dict]:
    import numpy as np
    from workers.ising.lattice import random_lattice
    from workers.ising.metropolis import metropolis_sweeps
    from workers.ising.rng import make_rng_state

    out, reps = [], 2 if quick else 5
    Ls, Ts = _grid(quick)
    try:
        from isingenerator import Simulation
    except ImportError:
        Simulation = None
        _note("isingenerator not installed: peer skipped (pip install 'rgsweep[bench]')")
    for L in Ls:
        for T in Ts:
            params = {"L": L, "T": round(T, 6)}
            spins = random_lattice(L, np.random.default_rng(0))
            state = make_rng_state(np.random.SeedSequence(0))
            n = _sweeps_for(L, 2e5 if quick else 3e7)
            em = np.zeros(2, dtype=np.int64)

            def ours():
                dt, _ = _timed(lambda: metropolis_sweeps(spins, 1.0 / T, n, state, em))
                return dt / (n * L * L) * 1e9
            out.append(_record("metropolis", "rgsweep", params, "time_per_flip", "ns",
                               _repeat(ours, reps)))
            if Simulation is not None:
                def peer():
                    sim = Simulation(rows=L, cols=L, seed=1)
                    dt, _ = _timed(lambda: sim.run_single_temperature(
                        T, equilibration_sweeps=n, measurement_blocks=1, sweeps_per_block=1,
                        threads=1))
                    return dt / ((n + 1) * L * L) * 1e9
                out.append(_record("metropolis", "isingenerator", params, "time_per_flip", "ns",
                                   _repeat(peer, reps)))
    return out


def suite_multispin(quick: bool) -> list[dict]:
    import numpy as np
    from workers.ising.multispin import multispin_sweeps, random_replicas
    from workers.ising.rng import make_rng_state

    out, reps = [], 2 if quick else 5
    Ls, Ts = _grid(quick)
    for L in Ls:
        for T in Ts:
            words = random_replicas(L, np.random.default_rng(0))
            state = make_rng_state(np.random.SeedSequence(0))
            n = _sweeps_for(L, 3e4 if quick else 1.5e6)

            def ours():
                dt, _ = _timed(lambda: multispin_sweeps(words, 1.0 / T, n, state))
                return dt / (n * L * L * 64) * 1e9
            out.append(_record("multispin", "rgsweep-multispin", {"L": L, "T": round(T, 6)},
                               "time_per_replica_flip", "ns", _repeat(ours, reps)))
    return out


def suite_wolff(quick: bool) -> list[dict]:
    import numpy as np
    from workers.ising.lattice import random_lattice
    from workers.ising.rng import make_rng_state
    from workers.ising.wolff import cluster_stack, wolff_sweep_equivalents, wolff_updates

    out, reps = [], 2 if quick else 5
    try:
        from isingmodel import Lattice  # the ising-rs distribution
    except ImportError:
        Lattice = None
        _note("ising-rs not installed: peer skipped (pip install ising-rs)")
    for L in ((16,) if quick else (64, 256)):
        params = {"L": L, "T": round(TC, 6)}
        spins = random_lattice(L, np.random.default_rng(0))
        state = make_rng_state(np.random.SeedSequence(0))
        stack = cluster_stack(L)
        wolff_sweep_equivalents(spins, 1.0 / TC, 5 if quick else 100, state, stack)
        n = 20 if quick else max(200, int(4e7 / (0.5 * L * L)) // 40)

        def ours():
            dt, flipped = _timed(lambda: wolff_updates(spins, 1.0 / TC, n, state, stack))
            return dt / flipped * 1e9
        out.append(_record("wolff", "rgsweep", params, "time_per_flipped_spin", "ns",
                           _repeat(ours, reps)))
        if Lattice is not None:
            lat = Lattice(width=L, height=L, temperature=TC, h_z=0.0)
            flipped = 0
            while flipped < (5 if quick else 100) * L * L:  # equilibrate: clusters grow
                before = np.asarray(lat.as_array())
                lat.wolff_step()
                flipped += int(np.count_nonzero(np.asarray(lat.as_array()) != before))

            def peer():
                dt, _ = _timed(lambda: [lat.wolff_step() for _ in range(n)])
                size = 0  # the binding returns nothing: count flipped spins in an untimed run
                for _ in range(n):
                    before = np.asarray(lat.as_array())
                    lat.wolff_step()
                    size += int(np.count_nonzero(np.asarray(lat.as_array()) != before))
                return dt / size * 1e9
            out.append(_record("wolff", "ising-rs", params, "time_per_flipped_spin", "ns",
                               _repeat(peer, reps)))
    return out


# --- RBM ---------------------------------------------------------------------------------------

def _torch_cd1(torch, V, n_h, epochs, batch=100, lr=0.01, momentum=0.5, l2=1e-4):
    """Plain PyTorch CD-1 with the same updates as workers.rbm.model (float32, momentum, L2)."""
    g = torch.Generator().manual_seed(0)
    n, n_v = V.shape
    W = torch.randn(n_v, n_h, generator=g) * 0.01
    a, b = torch.zeros(n_v), torch.zeros(n_h)
    vW, va, vb = torch.zeros_like(W), torch.zeros_like(a), torch.zeros_like(b)
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=g)
            for s in range(0, n, batch):
                v0 = V[order[s:s + batch]]
                ph0 = torch.sigmoid(v0 @ W + b)
                h0 = torch.bernoulli(ph0, generator=g)
                pv1 = torch.sigmoid(2.0 * (h0 @ W.T + a))
                v1 = 2.0 * torch.bernoulli(pv1, generator=g) - 1.0
                ph1 = torch.sigmoid(v1 @ W + b)
                m = v0.shape[0]
                gW = (v0.T @ ph0 - v1.T @ ph1) / m - l2 * W
                vW.mul_(momentum).add_(lr * gW)
                va.mul_(momentum).add_(lr * (v0.mean(0) - v1.mean(0)))
                vb.mul_(momentum).add_(lr * (ph0.mean(0) - ph1.mean(0)))
                W += vW
                a += va
                b += vb
    return W


def suite_rbm(quick: bool) -> list[dict]:
    from workers.rbm.model import RBM

    out, reps = [], 2 if quick else 3
    sizes = ((64, 16),) if quick else RBM_SIZES
    n_rows, epochs = (500, 1) if quick else (5000, 2)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
        _note("torch not installed: peer skipped (pip install 'rgsweep[bench]')")
    try:
        from sklearn.neural_network import BernoulliRBM
    except ImportError:
        BernoulliRBM = None
        _note("scikit-learn not installed: peer skipped (pip install 'rgsweep[bench]')")
    try:  # pin again: the peers may have loaded their own BLAS / OpenMP after run_bench did
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(1)
    except ImportError:
        limits = None
    if limits is not None:  # the peers and rgsweep share numpy's BLAS: say which kernels
        from threadpoolctl import threadpool_info
        for lib in threadpool_info():
            if lib.get("internal_api") in ("openblas", "mkl", "blis"):
                _note(f"{lib['internal_api']} {lib.get('version')} "
                      f"({lib.get('architecture') or lib.get('threading_layer')}), "
                      f"{lib.get('num_threads')} thread(s): {os.path.basename(lib['filepath'])}")
    try:
        for n_v, n_h in sizes:
            out += _rbm_size(n_v, n_h, n_rows, epochs, reps, RBM, torch, BernoulliRBM)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    return out


def _rbm_size(n_v, n_h, n_rows, epochs, reps, RBM, torch, BernoulliRBM) -> list[dict]:
    """CD-1 samples per second of rgsweep, PyTorch and scikit-learn (PCD-1) at one size."""
    import numpy as np

    out = []
    params = {"n_visible": n_v, "n_hidden": n_h, "batch": 100}
    V = np.where(np.random.default_rng(0).random((n_rows, n_v)) < 0.5, -1, 1).astype(np.int8)
    per_s = lambda dt: n_rows * epochs / dt

    def ours():
        rbm = RBM(n_h, method="cd", k=1, batch_size=100, epochs=epochs, random_state=0)
        return per_s(_timed(lambda: rbm.fit(V))[0])
    out.append(_record("rbm", "rgsweep", params, "cd1_throughput", "samples/s",
                       _repeat(ours, reps)))
    if torch is not None:
        Vt = torch.from_numpy(V.astype(np.float32))
        out.append(_record("rbm", "torch", params, "cd1_throughput", "samples/s", _repeat(
            lambda: per_s(_timed(lambda: _torch_cd1(torch, Vt, n_h, epochs))[0]), reps)))
    if BernoulliRBM is not None:
        X = (V > 0).astype(np.float32)

        def sk():
            model = BernoulliRBM(n_components=n_h, batch_size=100, n_iter=epochs,
                                 learning_rate=0.01, random_state=0)
            return per_s(_timed(lambda: model.fit(X))[0])
        out.append(_record("rbm", "scikit-learn", params, "pcd1_throughput", "samples/s",
                           _repeat(sk, reps)))
    return out


# --- orchestration -----------------------------------------------------------------------------

def _spec(name, Ls, temps, burn_in, samples, thin):
    from .spec import parse_spec
    return parse_spec({"sweep": {"name": name, "seed": 1, "lattice_sizes": list(Ls),
                                 "temperatures": list(temps)},
                       "sampling": {"algorithm": "metropolis", "burn_in": burn_in,
                                    "samples": samples, "thin": thin}})


# VmHWM, not getrusage's ru_maxrss: the latter survives exec, so a child would report the
# peak of the (much larger) benchmark process that started it
_PEAK_RSS = """
import sys
from workers.tasks import sample_task
config = {"L": 64, "T": 2.269185, "algorithm": sys.argv[2], "burn_in": 10,
          "samples": int(sys.argv[1]), "thin": 1, "seed": 1}
sample_task(config, (0,), {})
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024.0)
"""


def suite_orchestration(quick: bool) -> list[dict]:
    from .plan import make_plan
    from .runner import run_sweep
    from .store import Store

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
        out.append(_record("orchestration", "rgsweep", {"n_tasks": 4 * n_temps},
                           "plan_and_skip_check", "s", _repeat(skip_check, 3)))
    # throughput of 1 and 2 workers on a sweep of coarse tasks
    # full: 16 tasks of ~2 s each (130,000 sweeps at L = 64), long enough that Ray's worker
    # start-up transient (a few seconds) does not dominate; quick: 4 tiny ones
    coarse = (_spec("coarse", (16,), [2.0 + 0.1 * i for i in range(4)], 200, 20, 5) if quick else
              _spec("coarse", (64,), [2.0 + 0.05 * i for i in range(16)], 10_000, 2_000, 60))
    backends = ["process"]
    if importlib.util.find_spec("ray") is not None:  # only backends.py imports Ray (README, "Layout")
        backends.append("ray")
    else:
        _note("ray not installed: the ray backend is skipped")
    if quick and "ray" in backends:
        backends.remove("ray")
        _note("--quick: the ray backend is skipped (starting Ray alone takes seconds)")
    for backend in backends:
        rates = {}
        for workers in (1, 2):
            ready, committed = [], []
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                run_sweep(coarse, tmp, backend=backend, workers=workers,
                          on_ready=lambda: ready.append(time.perf_counter()),
                          progress=lambda _n: committed.append(time.perf_counter()))
                t1 = time.perf_counter()
            # Throughput from the moment the backend is up to the last task committed. Start-up
            # and teardown are fixed costs that a long sweep amortises, reported on their own,
            # so that the ratio measures how the task work scales.
            rates[workers] = len(make_plan(coarse)) / (committed[-1] - ready[0])
            params = {"workers": workers}
            out.append(_record("orchestration", f"rgsweep-{backend}", params,
                               "startup", "s", [ready[0] - t0]))
            out.append(_record("orchestration", f"rgsweep-{backend}", params,
                               "teardown", "s", [t1 - committed[-1]]))
            out.append(_record("orchestration", f"rgsweep-{backend}", params,
                               "throughput", "tasks/s", [rates[workers]]))
        out.append(_record("orchestration", f"rgsweep-{backend}", {"workers": 2},
                           "speedup_2_vs_1_workers", "x", [rates[2] / rates[1]]))
    # peak memory of one worker process running one sampling task at L = 64
    n_samples = 1000 if quick else 10_000
    for algorithm in ("metropolis", "multispin"):
        result = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(n_samples), algorithm],
                                capture_output=True, text=True,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if result.returncode != 0:
            _note(f"peak-memory run failed: {result.stderr.strip().splitlines()[-1:]}")
            continue
        out.append(_record("orchestration", f"rgsweep-{algorithm}",
                           {"L": 64, "n_samples": n_samples}, "worker_peak_rss", "MB",
                           [float(result.stdout.strip().splitlines()[-1])]))
    return out


# --- scaling -----------------------------------------------------------------------------------

def _slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def suite_scaling(quick: bool) -> list[dict]:
    import numpy as np
    from workers.ising.simulate import simulate
    from workers.ising.simulate import _interpolate, _TAU_METROPOLIS, _TAU_WOLFF  # run-length guesses
    from contract.estimators import chain_integrated_time

    out = []
    sizes = (8, 16, 32) if quick else (8, 16, 32, 64, 128, 256)
    for algorithm in ("metropolis", "multispin", "wolff"):  # compile outside the timings
        simulate(4, TC, algorithm, 2, 2, 2, np.random.SeedSequence(0))
    for algorithm in ("metropolis", "multispin", "wolff"):
        per_sweep = []
        for L in sizes:
            n = max(5, int((2e5 if quick else 2e7) / (L * L * (8 if algorithm == "multispin" else 1))))
            # Wolff fixes its clusters per measurement at the end of burn-in: clusters must have
            # grown to their equilibrium size by then, or a "sweep" flips far more than N spins
            burn = (20 if quick else 200) if algorithm == "wolff" else 5
            runs = [simulate(L, TC, algorithm, burn, 1 if algorithm != "multispin" else 64, n,
                             np.random.SeedSequence(L)) for _ in range(2 if quick else 3)]
            values = [r["wall_s"] / r["n_measurements"] * 1e6 for r in runs]
            per_sweep.append(statistics.median(values))
            out.append(_record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "time_per_sweep", "us", values))
        out.append(_record("scaling", f"rgsweep-{algorithm}",
                           {"L_min": sizes[0], "L_max": sizes[-1], "T": round(TC, 6)},
                           "loglog_slope_time_per_sweep", "1", [_slope(sizes, per_sweep)]))
    # independent samples per second at TC: chains / (2 tau_int x seconds per measurement)
    for algorithm in ("metropolis", "multispin", "wolff"):
        for L in ((8, 16) if quick else (16, 32, 64, 128)):
            table = _TAU_WOLFF if algorithm == "wolff" else _TAU_METROPOLIS
            guess = _interpolate(table, math.log2(L), TC, True)
            per_chain = 30 if algorithm == "multispin" else 100
            n = 200 if quick else max(1000, int(per_chain * guess))
            r = simulate(L, TC, algorithm, 20 if quick else int(10 * guess) + 100,
                         64 if algorithm == "multispin" else 1, n, np.random.SeedSequence(L))
            tau = max(chain_integrated_time(r["e_series"]),
                      chain_integrated_time(np.abs(r["m_series"])))
            rate = r["n_chains"] / (2.0 * tau * r["wall_s"] / r["n_measurements"])
            out.append(_record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "independent_samples_per_s", "1/s", [rate]))
            out.append(_record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "tau_int", "sweeps", [tau]))
    return out


SUITES: dict[str, Callable[[bool], list[dict]]] = {
    "metropolis": suite_metropolis,
    "multispin": suite_multispin,
    "wolff": suite_wolff,
    "rbm": suite_rbm,
    "orchestration": suite_orchestration,
    "scaling": suite_scaling,
}


# --- reporting ---------------------------------------------------------------------------------

def _ratios(records: list[dict]) -> list[dict]:
    """``speedup_vs_<peer>`` for every peer record with an rgsweep record of the same suite and
    params: peer time / our time, or our throughput / peer throughput."""
    ours = {(r["suite"], json.dumps(r["params"], sort_keys=True)): r for r in records
            if r["impl"].startswith("rgsweep") and r["unit"] not in ("x",)}
    out = []
    for r in records:
        if r["impl"].startswith("rgsweep"):
            continue
        mine = ours.get((r["suite"], json.dumps(r["params"], sort_keys=True)))
        if mine is None:
            continue
        higher_is_better = r["unit"].endswith("/s")
        ratio = mine["median"] / r["median"] if higher_is_better else r["median"] / mine["median"]
        out.append(_record(r["suite"], mine["impl"], r["params"], f"speedup_vs_{r['impl']}", "x",
                           [ratio]))
    return out


def _print_table(suite: str, records: list[dict]) -> None:
    print(f"\n== {suite} ==")
    print(f"{'impl':<22} {'params':<44} {'metric':<30} {'median':>12} {'min':>12} {'max':>12}  unit")
    for r in records:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['impl']:<22} {params:<44} {r['metric']:<30} {r['median']:>12.4g} "
              f"{r['min']:>12.4g} {r['max']:>12.4g}  {r['unit']}")


def _write_json(path: str, records: list[dict]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(records, f, indent=1)
    os.replace(tmp, path)


def run_bench(suites: list[str], quick: bool, json_path: str | None) -> int:
    """Run the named suites (all if empty), print a table each, optionally write JSON records.

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
        _note("threadpoolctl not installed: BLAS thread count not pinned")
    records = []
    try:
        for name in names:
            print(f"running suite {name}{' (quick)' if quick else ''} ...", flush=True)
            found = SUITES[name](quick)
            found += _ratios(found)
            _print_table(name, found)
            records += found
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
    if json_path:
        _write_json(json_path, records)
        print(f"\nwrote {len(records)} records to {json_path}")
    return 0
