"""One sampling job: equilibrate an L x L Ising lattice at temperature T and record it.

:func:`simulate` is the whole job for one (L, T). Its unit of Monte Carlo time is the sweep:
N attempted flips for Metropolis, a *sweep-equivalent* of about N flipped spins for Wolff
(docs/conventions.md). After ``burn_in`` sweeps it measures (E, M) after every sweep and stores the
configuration after every ``thin``-th measurement, until ``n_samples`` configurations are
stored, so there are ``n_samples * thin`` measurements.

Wolff measurements are *not* taken "when at least N spins have flipped since the last one":
that is a stopping time that depends on the cluster sizes, and measuring there is biased (L=16,
T=3: <e> = -0.8456(6) against Kaufman's -0.8177, while a fixed number of clusters per
measurement gives -0.8177(4)). So burn-in runs in such sweep-equivalents
(:func:`workers.ising.wolff.wolff_sweep_equivalents`), the mean cluster size <|C|> is measured over
its second half (over one extra sweep-equivalent if ``burn_in`` is 0), and from then on every
measurement follows a fixed ``round(N / <|C|>)`` cluster updates.

``thin = "auto"``: after burn-in a pilot run of ``max(1000, n_samples)`` sweeps is measured
and extended (doubling, at most 16 times its first length) until it is at least 50 tau_int
long; then ``thin = max(1, ceil(2 max(tau_e, tau_|m|)))``, so stored configurations are about
one "independent" sample apart. The pilot also serves as extra equilibration; its
measurements are not returned.

``algorithm = "multispin"``: 64 independent replicas of the same (L, T)
(:mod:`workers.ising.multispin`), each started from its own random configuration and given the same
``burn_in``. Every ``thin``-th sweep all 64 replicas are stored at once, so stored sample ``j``
is replica ``j % 64`` after sweep ``(j // 64 + 1) thin`` of the measurement phase; the
``n_samples`` samples come from ``min(64, n_samples)`` chains, ``ceil(n_samples / 64)`` per
chain. ``e_series`` and ``m_series`` have shape ``(ceil(n_samples / 64) thin, 64)``: one column
per chain, all 64 measured after every sweep (:func:`workers.ising.observables.thermodynamics`
handles both shapes).

``algorithm = "auto"`` (:func:`choose_algorithm`) picks the sampler with the most independent
samples per second, from a fixed table of autocorrelation times and costs measured once on
the reference machine (docs/performance.md), never from timings at run time, so the same spec
gives the same choice, and the same tables, everywhere.

Random streams: child 0 of ``seed_seq`` seeds the numpy Generator for the random start, child 1
the kernel's xorshift128+ state (:func:`workers.ising.rng.child_seed_sequence`, which does not
mutate ``seed_seq``), so the same ``seed_seq`` gives bit-identical outputs.

Conventions: see :mod:`workers.ising.lattice`.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from contract.constants import ALGORITHMS
from contract.estimators import chain_integrated_time
from workers.ising.lattice import check_count, check_size, random_lattice, total_energy, total_magnetization
from workers.ising.metropolis import metropolis_kernel, acceptance_thresholds
from workers.ising.multispin import (N_REPLICAS, multispin_kernel, replica_energy_magnetization_kernel,
                        unpack_rows, random_replicas, threshold_digits)
from contract.sampler_costs import PILOT_MAX_FACTOR as _PILOT_MAX_FACTOR, PILOT_MIN as _PILOT_MIN, \
    PILOT_TOL as _PILOT_TOL, choose_algorithm
from workers.ising.rng import child_seed_sequence, make_rng_state
from workers.ising.wolff import add_threshold, wolff_sweep_equivalents_kernel, wolff_updates_kernel, cluster_stack

__all__ = ["Run", "simulate"]




@njit(cache=True)
def _metropolis_measure(spins, thresholds, state, n_meas, thin, e_out, m_out, samples):
    """``n_meas`` sweeps, measuring after each and storing every ``thin``-th; return accepted."""
    N = spins.size
    flat = spins.reshape(N)
    em = np.empty(2, dtype=np.int64)
    em[0] = total_energy(spins)
    em[1] = total_magnetization(spins)
    accepted = 0
    j = 0
    for k in range(n_meas):
        accepted += metropolis_kernel(spins, thresholds, 1, state, em)
        e_out[k] = em[0] / N
        m_out[k] = em[1] / N
        if (k + 1) % thin == 0 and j < samples.shape[0]:
            samples[j, :] = flat
            j += 1
    return accepted


@njit(cache=True)
def _wolff_measure(spins, threshold, state, stack, n_clusters, n_meas, thin, e_out, m_out, samples):
    """As :func:`_metropolis_measure` with ``n_clusters`` cluster updates per measurement;
    return the number of flipped spins."""
    N = spins.size
    flat = spins.reshape(N)
    flipped = 0
    j = 0
    for k in range(n_meas):
        flipped += wolff_updates_kernel(spins, threshold, n_clusters, state, stack)
        e_out[k] = total_energy(spins) / N
        m_out[k] = total_magnetization(spins) / N
        if (k + 1) % thin == 0 and j < samples.shape[0]:
            samples[j, :] = flat
            j += 1
    return flipped


@njit(cache=True)
def _multispin_measure(words, digits, always, state, n_meas, thin, e_out, m_out, samples):
    """``n_meas`` sweeps of the 64 replicas, measuring each after every sweep; at every
    ``thin``-th sweep store the next (up to) 64 rows of ``samples``, replica k in row
    ``64 p + k`` for the p-th store. Return the accepted flips."""
    N = words.size
    E = np.empty(64, dtype=np.int64)
    M = np.empty(64, dtype=np.int64)
    bonds = np.empty(2 * N, dtype=np.uint64)
    accepted = 0
    row = 0
    for k in range(n_meas):
        accepted += multispin_kernel(words, digits, always, 1, state)
        replica_energy_magnetization_kernel(words, E, M, bonds)
        for j in range(64):
            e_out[k, j] = E[j] / N
            m_out[k, j] = M[j] / N
        if (k + 1) % thin == 0 and row < samples.shape[0]:
            n = min(64, samples.shape[0] - row)
            unpack_rows(words, 0, n, samples, row)
            row += n
    return accepted


class _Chain:
    """The state of one Markov chain, so burn-in, pilot and measurement share one code path."""

    def __init__(self, spins, algorithm, beta, state):
        self.spins = spins
        self.algorithm = algorithm
        self.state = state
        self.flips = 0  # Metropolis: accepted flips; Wolff: flipped spins
        self.clusters_per_sweep = 0
        if algorithm == "metropolis":
            self.thresholds = acceptance_thresholds(beta)
        elif algorithm == "multispin":
            self.digits, self.always = threshold_digits(beta)
        else:
            self.threshold = add_threshold(beta)
            self.stack = cluster_stack(spins.shape[0])

    def burn(self, n_sweeps):
        """Equilibrate; for Wolff also fix the clusters per measurement from the second half."""
        if self.algorithm == "metropolis":
            em = np.zeros(2, dtype=np.int64)  # E, M not needed here: any start value will do
            metropolis_kernel(self.spins, self.thresholds, n_sweeps, self.state, em)
            return
        if self.algorithm == "multispin":
            multispin_kernel(self.spins, self.digits, self.always, n_sweeps, self.state)
            return
        counts = np.zeros(2, dtype=np.int64)
        first = n_sweeps // 2
        wolff_sweep_equivalents_kernel(self.spins, self.threshold, first, self.state, self.stack, counts)
        counts[:] = 0
        wolff_sweep_equivalents_kernel(self.spins, self.threshold, max(n_sweeps - first, 1),
                                 self.state, self.stack, counts)
        self.clusters_per_sweep = max(1, int(round(self.spins.size * counts[1] / counts[0])))

    def run(self, n_meas, thin=1, n_store=0):
        """Measure after each of ``n_meas`` sweeps, storing every ``thin``-th configuration."""
        N = self.spins.size
        shape = (n_meas, N_REPLICAS) if self.algorithm == "multispin" else (n_meas,)
        e = np.empty(shape)
        m = np.empty(shape)
        samples = np.empty((n_store, N), dtype=np.int8)
        if self.algorithm == "multispin":
            self.flips += _multispin_measure(self.spins, self.digits, self.always, self.state,
                                             n_meas, thin, e, m, samples)
        elif self.algorithm == "metropolis":
            self.flips += _metropolis_measure(self.spins, self.thresholds, self.state,
                                              n_meas, thin, e, m, samples)
        else:
            self.flips += _wolff_measure(self.spins, self.threshold, self.state, self.stack,
                                         self.clusters_per_sweep, n_meas, thin, e, m, samples)
        return e, m, samples


def _pilot_thin(chain, n_store):
    """Measure tau_int on a pilot run (extended until >= 50 tau long) and derive thin.

    ``n_store`` is the number of stores per chain; for the multi-spin chains tau_int comes
    from the autocovariance pooled over the chains and the length rule is per chain.
    """
    first = max(_PILOT_MIN, n_store)
    e, m, _ = chain.run(first)
    while True:
        tau = max(chain_integrated_time(e), chain_integrated_time(np.abs(m)))
        n = e.shape[0]
        if n >= _PILOT_TOL * tau or n >= _PILOT_MAX_FACTOR * first:
            break
        more_e, more_m, _ = chain.run(n)
        e = np.concatenate([e, more_e])
        m = np.concatenate([m, more_m])
    return max(1, math.ceil(2.0 * tau)), n


def _validate(L, T, algorithm, burn_in, n_samples, thin, seed_seq):
    check_size(L)
    T = float(T)
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T must be a finite number > 0, got {T}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm in ("metropolis", "multispin") and L % 2:
        raise ValueError(f"algorithm {algorithm!r} (checkerboard) needs an even L, got L = {L}; "
                         "use 'wolff' or 'auto'")
    burn_in = check_count(burn_in, "burn_in")
    n_samples = check_count(n_samples, "n_samples")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if thin != "auto":
        thin = check_count(thin, "thin")
        if thin < 1:
            raise ValueError(f"thin must be an integer >= 1 or 'auto', got {thin}")
    if not isinstance(seed_seq, np.random.SeedSequence):
        raise TypeError(f"seed_seq must be a numpy.random.SeedSequence, got {type(seed_seq).__name__}")
    return int(L), T, burn_in, n_samples, thin


@dataclass(frozen=True, eq=False)  # arrays: identity, not elementwise, equality
class Run:
    """What one :func:`simulate` call produced.

    ``samples``: int8 (n_samples, N), rows are configurations with site ``row*L + col``
    (multispin: sample j is chain j % 64, module docstring). ``e_series``, ``m_series``: float64
    (n_samples * thin,), per-spin E/N and signed M/N after every sweep of the measurement phase
    (multispin: (ceil(n_samples / 64) * thin, 64), one column per chain). ``acceptance``:
    Metropolis accepted / attempted flips, Wolff mean cluster size / N. ``attempted_flips``:
    Metropolis N per sweep (multispin 64 N), Wolff the flipped spins (a cluster flip is never
    rejected); ``flipped_spins``: spins actually flipped; ``n_clusters``, ``clusters_per_sweep``:
    Wolff cluster updates in all and per measurement (0 for Metropolis); ``wall_s``: seconds of
    the measurement phase; ``flips_per_ns``: attempted flips per ns of it; ``thin_used``;
    ``pilot_sweeps``: length of the "auto" pilot (0 otherwise); ``algorithm_used``; ``n_chains``:
    64 for multispin, else 1; ``L``, ``T``; ``n_measurements`` per chain.
    """

    samples: np.ndarray
    e_series: np.ndarray
    m_series: np.ndarray
    acceptance: float
    attempted_flips: int
    flipped_spins: int
    n_clusters: int
    clusters_per_sweep: int
    wall_s: float
    flips_per_ns: float
    thin_used: int
    pilot_sweeps: int
    algorithm_used: str
    n_chains: int
    L: int
    T: float
    n_measurements: int


def simulate(L, T, algorithm, burn_in, n_samples, thin, seed_seq):
    """Sample the L x L periodic Ising model at temperature T.

    Parameters
    ----------
    L : int >= 2
        Linear size (even for "metropolis").
    T : float > 0
        Temperature (J = k_B = 1), beta = 1/T.
    algorithm : {"metropolis", "wolff", "multispin", "auto"}
        "auto" follows :func:`choose_algorithm` (with ``n_samples``); "multispin" runs 64
        independent chains (module docstring).
    burn_in : int >= 0
        Sweeps (Wolff: sweep-equivalents) discarded before measuring.
    n_samples : int >= 1
        Configurations to store.
    thin : int >= 1 or "auto"
        Measurements (one per sweep) between stored configurations.
    seed_seq : numpy.random.SeedSequence
        Not mutated; equal ``seed_seq`` give bit-identical outputs (except the timings).

    Returns
    -------
    Run
        The stored configurations, the measurement series and the run's counters.
    """
    L, T, burn_in, n_samples, thin = _validate(L, T, algorithm, burn_in, n_samples, thin, seed_seq)
    algorithm_used = (choose_algorithm(L, T, n_samples) if algorithm == "auto" else algorithm)
    start_rng = np.random.default_rng(child_seed_sequence(seed_seq, 0))
    if algorithm_used == "multispin":
        spins = random_replicas(L, start_rng)
        n_chains = N_REPLICAS
    else:
        spins = random_lattice(L, start_rng)
        n_chains = 1
    chain = _Chain(spins, algorithm_used, 1.0 / T, make_rng_state(child_seed_sequence(seed_seq, 1)))
    N = L * L

    chain.burn(burn_in)
    pilot = 0
    if thin == "auto":
        thin, pilot = _pilot_thin(chain, -(-n_samples // n_chains))

    chain.flips = 0
    n_meas = -(-n_samples // n_chains) * thin  # each chain stores every thin-th sweep
    start = time.perf_counter()
    e, m, samples = chain.run(n_meas, thin, n_samples)
    wall = time.perf_counter() - start

    flipped = int(chain.flips)
    if algorithm_used == "wolff":
        attempted, clusters = flipped, n_meas * chain.clusters_per_sweep
        acceptance = flipped / clusters / N
    else:
        attempted, clusters = n_meas * N * n_chains, 0
        acceptance = flipped / attempted
    return Run(samples=samples, e_series=e, m_series=m, acceptance=acceptance, attempted_flips=attempted,
               flipped_spins=flipped, n_clusters=clusters, clusters_per_sweep=int(chain.clusters_per_sweep),
               wall_s=wall, flips_per_ns=attempted / (wall * 1e9) if wall > 0 else float("nan"),
               thin_used=int(thin), pilot_sweeps=int(pilot), algorithm_used=algorithm_used, n_chains=n_chains,
               L=L, T=T, n_measurements=n_meas)
