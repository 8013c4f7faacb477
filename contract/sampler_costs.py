"""Which sampler for ``"auto"``: the measured tau_int and cost tables, and the rule built on them.

Measured on these machines (docs/performance.md, "Choosing a sampler"); :func:`choose_algorithm`
is the ``algorithm = "auto"`` rule and :func:`sampler_cost` the time per independent sample.
"""

import math

import numpy as np

from contract.constants import TC
from contract.constants import N_REPLICAS

__all__ = ["PILOT_MIN", "PILOT_MAX_FACTOR", "PILOT_TOL", "TC", "TAU_METROPOLIS", "TAU_WOLFF", "interpolate_table", "sampler_cost", "tau_sweeps", "sweep_ns", "choose_algorithm"]

# max(tau_int(e), tau_int(|m|)) in sweeps (Wolff: measurements of ~1 sweep-equivalent each),
# at L = 8, 16, 32, 64 (rows) and T = _TABLE_T (columns), from 64-chain multi-spin runs of
# 2,000-30,000 sweeps (Metropolis dynamics) and single Wolff chains of 10,000-20,000 measurements.
# (Metropolis at L = 64, T = 1.5 is copied from L = 32: the measured 1.93 came from chains stuck
# in stripe states, see _ORDERED_T.)
_TABLE_T = (1.5, 2.0, 2.15, 2.269185, 2.4, 2.5, 3.0, 3.5)
_TABLE_LOG2_L = (3.0, 4.0, 5.0, 6.0)
TAU_METROPOLIS = np.array([[0.74, 2.11, 2.91, 3.08, 3.03, 2.78, 1.49, 0.96],
                            [0.76, 2.59, 7.55, 10.16, 9.10, 6.73, 1.71, 1.00],
                            [0.76, 2.76, 12.51, 41.73, 22.84, 10.73, 1.78, 1.01],
                            [0.76, 2.82, 11.50, 163.84, 34.05, 11.78, 1.78, 1.00]])
TAU_WOLFF = np.array([[0.61, 1.05, 1.33, 0.89, 1.14, 1.13, 0.72, 0.64],
                       [0.61, 1.15, 1.72, 1.39, 1.31, 1.07, 0.73, 0.63],
                       [0.60, 0.98, 1.68, 1.96, 1.43, 1.06, 0.75, 0.67],
                       [0.59, 1.00, 1.54, 2.02, 1.37, 1.09, 0.80, 0.69]])
# ns per spin per measurement per chain, measuring included: Metropolis and multi-spin by L
# (flat above L = 16), Wolff by T (branch-free kernel, L = 16..64 smoothed; small clusters cost
# more per spin)
_COST_METROPOLIS = (4.0, 3.4, 3.3, 3.4)
_COST_MULTISPIN = (0.51, 0.37, 0.35, 0.36)
_COST_WOLFF = (9.7, 9.5, 8.5, 11.2, 10.8, 11.0, 12.0, 14.0)
# Below this T a checkerboard chain started at random can freeze into a stripe state for longer
# than any practical burn-in (L = 64, T = 1.5, 2,000 sweeps: <|m|> = 0.957 over 64 chains
# against 0.9865 exact); Wolff has no such trap.
_ORDERED_T = 2.0
#: ``thin = "auto"``'s pilot run (workers.ising.simulate): at least this many sweeps per chain,
#: extended until it is PILOT_TOL tau_int long or PILOT_MAX_FACTOR times its first length.
PILOT_MIN, PILOT_MAX_FACTOR, PILOT_TOL = 1000, 16, 50.0

def interpolate_table(table, log2_L, T, extrapolate):
    """Bilinear in (log2 L, T) on log(table); T clamped to the grid, log2 L extrapolated
    linearly from the last two rows above L = 64 if ``extrapolate``, else clamped."""
    T = min(max(T, _TABLE_T[0]), _TABLE_T[-1])
    rows = np.array([np.interp(T, _TABLE_T, np.log(row)) for row in np.atleast_2d(table)])
    if rows.size == 1:
        return float(np.exp(rows[0]))
    if log2_L > _TABLE_LOG2_L[-1] and extrapolate:
        return float(np.exp(rows[-1] + (rows[-1] - rows[-2]) * (log2_L - _TABLE_LOG2_L[-1])))
    return float(np.exp(np.interp(log2_L, _TABLE_LOG2_L, rows)))


def sampler_cost(L, T, algorithm):
    """Tabulated cost of one independent sample: ``2 tau_int x (ns per measurement per chain)``
    divided by N, in ns per spin (smaller is better).

    From the measurements in the module constants (docs/performance.md): log tau_int and log
    cost interpolated bilinearly in (log2 L, T), T clamped to [1.5, 3.5], L clamped below 8 and
    extrapolated as a power law beyond 64 (which at TC is tau ~ L^1.97 for Metropolis).

    Parameters
    ----------
    L : int
    T : float
    algorithm : {"metropolis", "multispin", "wolff"}

    Returns
    -------
    float
    """
    return 2.0 * tau_sweeps(L, T, algorithm) * sweep_ns(L, T, algorithm)


def tau_sweeps(L, T, algorithm):
    """Tabulated max(tau_int(e), tau_int(|m|)) in sweeps (sweep-equivalents for Wolff); the
    interpolation of :func:`sampler_cost`."""
    log2_L = max(math.log2(L), _TABLE_LOG2_L[0])
    return interpolate_table(TAU_WOLFF if algorithm == "wolff" else TAU_METROPOLIS, log2_L, T, True)


def sweep_ns(L, T, algorithm):
    """Tabulated ns per spin per sweep (per sweep-equivalent for Wolff) of one chain, measuring
    included: by L for the checkerboard samplers (multi-spin: per replica), by T for Wolff."""
    log2_L = max(math.log2(L), _TABLE_LOG2_L[0])
    if algorithm == "wolff":
        return interpolate_table(np.array(_COST_WOLFF), log2_L, T, False)
    per_sweep = _COST_MULTISPIN if algorithm == "multispin" else _COST_METROPOLIS
    return float(np.interp(log2_L, _TABLE_LOG2_L, per_sweep))


def choose_algorithm(L, T, n_samples=None):
    """The "auto" rule: the sampler with the most independent samples per second at (L, T).

    Wolff if L is odd (checkerboards need even L) or ``T < 2.0`` (stripe traps, see
    ``_ORDERED_T``). Otherwise the cheaper of Wolff and a checkerboard sampler by
    :func:`sampler_cost`, where the checkerboard sampler is "multispin" when
    ``n_samples >= 64`` (every chain then contributes stored samples) and "metropolis"
    otherwise (also when ``n_samples`` is None). A pure function of its arguments.
    """
    if L % 2 or T < _ORDERED_T:
        return "wolff"
    single = "multispin" if n_samples is not None and n_samples >= N_REPLICAS else "metropolis"
    return single if sampler_cost(L, T, single) <= sampler_cost(L, T, "wolff") else "wolff"
