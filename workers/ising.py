"""One sampling job: equilibrate an L x L Ising lattice at temperature T and record it.

:func:`simulate` is the whole job for one (L, T). Its unit of Monte Carlo time is the sweep:
N attempted flips for Metropolis, a *sweep-equivalent* of about N flipped spins for Wolff
(DESIGN.md). After ``burn_in`` sweeps it measures (E, M) after every sweep and stores the
configuration after every ``thin``-th measurement, until ``n_samples`` configurations are
stored, so there are ``n_samples * thin`` measurements.

Wolff measurements are *not* taken "when at least N spins have flipped since the last one":
that is a stopping time that depends on the cluster sizes, and measuring there is biased (L=16,
T=3: <e> = -0.8456(6) against Kaufman's -0.8177, while a fixed number of clusters per
measurement gives -0.8177(4)). So burn-in runs in such sweep-equivalents
(:func:`workers.wolff.wolff_sweep_equivalents`), the mean cluster size <|C|> is measured over
its second half (over one extra sweep-equivalent if ``burn_in`` is 0), and from then on every
measurement follows a fixed ``round(N / <|C|>)`` cluster updates.

``thin = "auto"``: after burn-in a pilot run of ``max(1000, n_samples)`` sweeps is measured
and extended (doubling, at most 16 times its first length) until it is at least 50 tau_int
long; then ``thin = max(1, ceil(2 max(tau_e, tau_|m|)))``, so stored configurations are about
one "independent" sample apart. The pilot also serves as extra equilibration; its
measurements are not returned.

``algorithm = "auto"``: Wolff when ``T < TC + 0.5`` (critical slowing down makes Metropolis
hopeless near TC, and at low T it hardly moves between the two ordered states) or when L is odd
(checkerboard Metropolis needs even L); Metropolis otherwise, where clusters are tiny and single
flips are cheaper. A later issue refines this rule.

Random streams: child 0 of ``seed_seq`` seeds the numpy Generator for the random start, child 1
the kernel's xorshift128+ state (:func:`workers.rng.child_seed_sequence`, which does not
mutate ``seed_seq``), so the same ``seed_seq`` gives bit-identical outputs.

Conventions: see :mod:`workers.lattice`.
"""

import math
import time

import numpy as np
from numba import njit

from .autocorr import integrated_time
from .lattice import _check_count, random_lattice, total_energy, total_magnetization
from .metropolis import _metropolis_sweeps, acceptance_thresholds
from .rng import child_seed_sequence, make_rng_state
from .wolff import _add_threshold, _wolff_sweep_equivalents, _wolff_updates, cluster_stack

__all__ = [
    "TC",
    "ALGORITHMS",
    "choose_algorithm",
    "simulate",
]

TC = 2.0 / math.log1p(math.sqrt(2.0))  # Onsager's critical temperature, J = k_B = 1
ALGORITHMS = ("metropolis", "wolff", "auto")
_AUTO_WOLFF_ABOVE_TC = 0.5
_PILOT_MIN = 1000
_PILOT_MAX_FACTOR = 16
_PILOT_TOL = 50.0


def choose_algorithm(L, T):
    """The "auto" rule: "wolff" if ``T < TC + 0.5`` or L is odd, else "metropolis"."""
    if L % 2 or T < TC + _AUTO_WOLFF_ABOVE_TC:
        return "wolff"
    return "metropolis"


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
        accepted += _metropolis_sweeps(spins, thresholds, 1, state, em)
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
        flipped += _wolff_updates(spins, threshold, n_clusters, state, stack)
        e_out[k] = total_energy(spins) / N
        m_out[k] = total_magnetization(spins) / N
        if (k + 1) % thin == 0 and j < samples.shape[0]:
            samples[j, :] = flat
            j += 1
    return flipped


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
        else:
            self.threshold = _add_threshold(beta)
            self.stack = cluster_stack(spins.shape[0])

    def burn(self, n_sweeps):
        """Equilibrate; for Wolff also fix the clusters per measurement from the second half."""
        if self.algorithm == "metropolis":
            em = np.zeros(2, dtype=np.int64)  # E, M not needed here: any start value will do
            _metropolis_sweeps(self.spins, self.thresholds, n_sweeps, self.state, em)
            return
        counts = np.zeros(2, dtype=np.int64)
        first = n_sweeps // 2
        _wolff_sweep_equivalents(self.spins, self.threshold, first, self.state, self.stack, counts)
        counts[:] = 0
        _wolff_sweep_equivalents(self.spins, self.threshold, max(n_sweeps - first, 1),
                                 self.state, self.stack, counts)
        self.clusters_per_sweep = max(1, int(round(self.spins.size * counts[1] / counts[0])))

    def run(self, n_meas, thin=1, n_store=0):
        """Measure after each of ``n_meas`` sweeps, storing every ``thin``-th configuration."""
        N = self.spins.size
        e = np.empty(n_meas)
        m = np.empty(n_meas)
        samples = np.empty((n_store, N), dtype=np.int8)
        if self.algorithm == "metropolis":
            self.flips += _metropolis_measure(self.spins, self.thresholds, self.state,
                                              n_meas, thin, e, m, samples)
        else:
            self.flips += _wolff_measure(self.spins, self.threshold, self.state, self.stack,
                                         self.clusters_per_sweep, n_meas, thin, e, m, samples)
        return e, m, samples


def _pilot_thin(chain, n_samples):
    """Measure tau_int on a pilot run (extended until >= 50 tau long) and derive thin."""
    first = max(_PILOT_MIN, n_samples)
    e, m, _ = chain.run(first)
    while True:
        tau = max(integrated_time(e, quiet=True), integrated_time(np.abs(m), quiet=True))
        if e.size >= _PILOT_TOL * tau or e.size >= _PILOT_MAX_FACTOR * first:
            break
        more_e, more_m, _ = chain.run(e.size)
        e = np.concatenate([e, more_e])
        m = np.concatenate([m, more_m])
    return max(1, math.ceil(2.0 * tau)), e.size


def _validate(L, T, algorithm, burn_in, n_samples, thin, seed_seq):
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L must be an integer >= 2, got {L!r}")
    T = float(T)
    if not np.isfinite(T) or T <= 0:
        raise ValueError(f"T must be a finite number > 0, got {T}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if algorithm == "metropolis" and L % 2:
        raise ValueError(f"algorithm 'metropolis' (checkerboard) needs an even L, got L = {L}; "
                         "use 'wolff' or 'auto'")
    burn_in = _check_count(burn_in, "burn_in")
    n_samples = _check_count(n_samples, "n_samples")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if thin != "auto":
        thin = _check_count(thin, "thin")
        if thin < 1:
            raise ValueError(f"thin must be an integer >= 1 or 'auto', got {thin}")
    if not isinstance(seed_seq, np.random.SeedSequence):
        raise TypeError(f"seed_seq must be a numpy.random.SeedSequence, got {type(seed_seq).__name__}")
    return int(L), T, burn_in, n_samples, thin


def simulate(L, T, algorithm, burn_in, n_samples, thin, seed_seq):
    """Sample the L x L periodic Ising model at temperature T.

    Parameters
    ----------
    L : int >= 2
        Linear size (even for "metropolis").
    T : float > 0
        Temperature (J = k_B = 1), beta = 1/T.
    algorithm : {"metropolis", "wolff", "auto"}
        "auto" follows :func:`choose_algorithm`.
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
    dict
        samples : int8, shape (n_samples, N), rows are configurations with site ``row*L + col``;
        e_series, m_series : float64, shape (n_samples * thin,), per-spin E/N and signed M/N
        after every sweep of the measurement phase;
        acceptance : Metropolis accepted / attempted flips; Wolff mean cluster size / N;
        attempted_flips : Metropolis N per sweep; Wolff the flipped spins (a cluster flip is
        never rejected); flipped_spins : spins actually flipped; n_clusters : Wolff cluster
        updates (0 for Metropolis); clusters_per_sweep : Wolff cluster updates per
        measurement (0 for Metropolis); wall_s : seconds of the measurement phase;
        flips_per_ns : attempted_flips per ns of wall_s; thin_used : int;
        pilot_sweeps : length of the "auto" pilot (0 otherwise); algorithm_used : str;
        L, T, n_measurements.
    """
    L, T, burn_in, n_samples, thin = _validate(L, T, algorithm, burn_in, n_samples, thin, seed_seq)
    algorithm_used = choose_algorithm(L, T) if algorithm == "auto" else algorithm
    spins = random_lattice(L, np.random.default_rng(child_seed_sequence(seed_seq, 0)))
    chain = _Chain(spins, algorithm_used, 1.0 / T, make_rng_state(child_seed_sequence(seed_seq, 1)))
    N = L * L

    chain.burn(burn_in)
    pilot = 0
    if thin == "auto":
        thin, pilot = _pilot_thin(chain, n_samples)

    chain.flips = 0
    n_meas = n_samples * thin
    start = time.perf_counter()
    e, m, samples = chain.run(n_meas, thin, n_samples)
    wall = time.perf_counter() - start

    flipped = int(chain.flips)
    if algorithm_used == "metropolis":
        attempted, clusters = n_meas * N, 0
        acceptance = flipped / attempted
    else:
        attempted, clusters = flipped, n_meas * chain.clusters_per_sweep
        acceptance = flipped / clusters / N
    return {
        "samples": samples,
        "e_series": e,
        "m_series": m,
        "acceptance": acceptance,
        "attempted_flips": attempted,
        "flipped_spins": flipped,
        "n_clusters": clusters,
        "clusters_per_sweep": int(chain.clusters_per_sweep),
        "wall_s": wall,
        "flips_per_ns": attempted / (wall * 1e9) if wall > 0 else float("nan"),
        "thin_used": int(thin),
        "pilot_sweeps": int(pilot),
        "algorithm_used": algorithm_used,
        "L": L,
        "T": T,
        "n_measurements": n_meas,
    }
