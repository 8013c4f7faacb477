"""Sampler suites: Metropolis, multi-spin and Wolff against the peer packages, and how the
sampling cost scales with L (rgsweep's run-length rule against measured tau_int)."""

from __future__ import annotations

import math
import statistics

from contract.constants import TC

from .common import note, record, repeat, timed

__all__ = ["suite_metropolis", "suite_multispin", "suite_wolff", "suite_scaling"]


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
        note("isingenerator not installed: peer skipped (pip install 'rgsweep[bench]')")
    for L in Ls:
        for T in Ts:
            params = {"L": L, "T": round(T, 6)}
            spins = random_lattice(L, np.random.default_rng(0))
            state = make_rng_state(np.random.SeedSequence(0))
            n = _sweeps_for(L, 2e5 if quick else 3e7)
            em = np.zeros(2, dtype=np.int64)

            def ours():
                dt, _ = timed(lambda: metropolis_sweeps(spins, 1.0 / T, n, state, em))
                return dt / (n * L * L) * 1e9
            out.append(record("metropolis", "rgsweep", params, "time_per_flip", "ns",
                               repeat(ours, reps)))
            if Simulation is not None:
                def peer():
                    sim = Simulation(rows=L, cols=L, seed=1)
                    dt, _ = timed(lambda: sim.run_single_temperature(
                        T, equilibration_sweeps=n, measurement_blocks=1, sweeps_per_block=1,
                        threads=1))
                    return dt / ((n + 1) * L * L) * 1e9
                out.append(record("metropolis", "isingenerator", params, "time_per_flip", "ns",
                                   repeat(peer, reps)))
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
                dt, _ = timed(lambda: multispin_sweeps(words, 1.0 / T, n, state))
                return dt / (n * L * L * 64) * 1e9
            out.append(record("multispin", "rgsweep-multispin", {"L": L, "T": round(T, 6)},
                               "time_per_replica_flip", "ns", repeat(ours, reps)))
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
        note("ising-rs not installed: peer skipped (pip install ising-rs)")
    for L in ((16,) if quick else (64, 256)):
        params = {"L": L, "T": round(TC, 6)}
        spins = random_lattice(L, np.random.default_rng(0))
        state = make_rng_state(np.random.SeedSequence(0))
        stack = cluster_stack(L)
        wolff_sweep_equivalents(spins, 1.0 / TC, 5 if quick else 100, state, stack)
        n = 20 if quick else max(200, int(4e7 / (0.5 * L * L)) // 40)

        def ours():
            dt, flipped = timed(lambda: wolff_updates(spins, 1.0 / TC, n, state, stack))
            return dt / flipped * 1e9
        out.append(record("wolff", "rgsweep", params, "time_per_flipped_spin", "ns",
                           repeat(ours, reps)))
        if Lattice is not None:
            lat = Lattice(width=L, height=L, temperature=TC, h_z=0.0)
            flipped = 0
            while flipped < (5 if quick else 100) * L * L:  # equilibrate: clusters grow
                before = np.asarray(lat.as_array())
                lat.wolff_step()
                flipped += int(np.count_nonzero(np.asarray(lat.as_array()) != before))

            def peer():
                dt, _ = timed(lambda: [lat.wolff_step() for _ in range(n)])
                size = 0  # the binding returns nothing: count flipped spins in an untimed run
                for _ in range(n):
                    before = np.asarray(lat.as_array())
                    lat.wolff_step()
                    size += int(np.count_nonzero(np.asarray(lat.as_array()) != before))
                return dt / size * 1e9
            out.append(record("wolff", "ising-rs", params, "time_per_flipped_spin", "ns",
                               repeat(peer, reps)))
    return out



def _slope(xs, ys):
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def suite_scaling(quick: bool) -> list[dict]:
    import numpy as np
    from workers.ising.simulate import simulate
    from contract.sampler_costs import TAU_METROPOLIS, TAU_WOLFF, interpolate_table  # run-length guesses
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
            values = [r.wall_s / r.n_measurements * 1e6 for r in runs]
            per_sweep.append(statistics.median(values))
            out.append(record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "time_per_sweep", "us", values))
        out.append(record("scaling", f"rgsweep-{algorithm}",
                           {"L_min": sizes[0], "L_max": sizes[-1], "T": round(TC, 6)},
                           "loglog_slope_time_per_sweep", "1", [_slope(sizes, per_sweep)]))
    # independent samples per second at TC: chains / (2 tau_int x seconds per measurement)
    for algorithm in ("metropolis", "multispin", "wolff"):
        for L in ((8, 16) if quick else (16, 32, 64, 128)):
            table = TAU_WOLFF if algorithm == "wolff" else TAU_METROPOLIS
            guess = interpolate_table(table, math.log2(L), TC, True)
            per_chain = 30 if algorithm == "multispin" else 100
            n = 200 if quick else max(1000, int(per_chain * guess))
            r = simulate(L, TC, algorithm, 20 if quick else int(10 * guess) + 100,
                         64 if algorithm == "multispin" else 1, n, np.random.SeedSequence(L))
            tau = max(chain_integrated_time(r.e_series),
                      chain_integrated_time(np.abs(r.m_series)))
            rate = r.n_chains / (2.0 * tau * r.wall_s / r.n_measurements)
            out.append(record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "independent_samples_per_s", "1/s", [rate]))
            out.append(record("scaling", f"rgsweep-{algorithm}", {"L": L, "T": round(TC, 6)},
                               "tau_int", "sweeps", [tau]))
    return out
