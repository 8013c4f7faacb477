"""Exact references by enumeration: the Hamiltonian, and every state of an L <= 4 torus.

Conventions (docs/conventions.md): spins s = +-1, H = -J sum_<ij> s_i s_j with J = k_B = 1, an L x L
periodic lattice, N = L^2, beta = 1/T = K, site index i = row*L + col. The bonds are "each site
to its right and its down neighbour, with wrap-around", so there are always 2N of them; for L = 2
each neighbouring pair is therefore bonded twice (the right neighbour of column 1 is column 0
again). This is also what Kaufman's transfer-matrix solution counts, so both agree for every L.
The argument helpers here serve :mod:`.closed_form` too.
"""

import functools

import numpy as np
from scipy import special

__all__ = ["MAX_BRUTE_FORCE_L", "T_MIN_ANALYTIC", "temperature_array", "shaped", "check_L", "ising_energy",
           "brute_force", "energy_histogram", "exact_energy_distribution"]

MAX_BRUTE_FORCE_L = 4
"""Largest L enumerated: 2^16 configurations; L = 5 would need 2^25."""

T_MIN_ANALYTIC = 0.01  # below it sinh(2/T)^2 overflows in Kaufman's and Onsager's formulas



def temperature_array(T, t_min=0.0):
    """Validate T (finite, > t_min) and return (flat float array, shape, is_scalar)."""
    arr = np.asarray(T, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("T must contain at least one temperature, got an empty array")
    if not np.all(np.isfinite(arr) & (arr > 0) & (arr >= t_min)):
        raise ValueError(f"T must be finite, > 0 and >= {t_min}, got {T!r}")
    return arr.ravel(), arr.shape, arr.ndim == 0


def shaped(values, shape, scalar):
    """Reshape every flat array in ``values`` to ``shape``; floats for scalar input."""
    if scalar:
        return {k: float(v[0]) for k, v in values.items()}
    return {k: v.reshape(shape) for k, v in values.items()}


def check_L(L, lo, hi=np.inf):
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or not lo <= L <= hi:
        raise ValueError(f"L must be an integer in [{lo}, {hi}], got {L!r}")
    return int(L)


# --------------------------------------------------------------------------- enumeration


def ising_energy(V, L):
    """Total Ising energy H(s) = -sum_<ij> s_i s_j of flattened L x L periodic configurations.

    Parameters
    ----------
    V : array (n, L*L) of +-1, site i = row * L + col.
    L : int >= 2

    Returns
    -------
    H : ndarray (n,) int64. Each site counts its right and down neighbour, so every bond of
        the torus is counted once (for L = 2 each pair of neighbours is joined by two bonds).
    """
    V = np.asarray(V)
    if V.ndim != 2 or V.shape[1] != L * L:
        raise ValueError(f"V must have shape (n, {L * L}) for L={L}, got {V.shape}")
    S = V.reshape(-1, L, L).astype(np.int8, copy=False)
    H = np.empty(S.shape[0], dtype=np.int64)
    chunk = max(1, (1 << 22) // (L * L))  # bounded memory for millions of configurations
    for start in range(0, S.shape[0], chunk):
        blk = S[start:start + chunk]
        bonds = blk * np.roll(blk, -1, axis=2) + blk * np.roll(blk, -1, axis=1)  # int8, |.| <= 2
        H[start:start + chunk] = -bonds.sum(axis=(1, 2), dtype=np.int64)
    return H


@functools.lru_cache(maxsize=None)
def _joint_histogram(L):
    """Distinct (E, M) pairs of all 2^N configurations and how many configurations have each."""
    n = L * L
    codes = np.arange(2**n, dtype=np.int64)
    spins = (1 - 2 * ((codes[:, None] >> np.arange(n)) & 1)).astype(np.int8)
    energy = ising_energy(spins, L)
    magnetization = spins.sum(axis=1, dtype=np.int64)
    joint = np.stack([energy, magnetization], axis=1)
    pairs, counts = np.unique(joint, axis=0, return_counts=True)
    out = (pairs[:, 0].copy(), pairs[:, 1].copy(), counts.astype(np.int64))
    for a in out:
        a.setflags(write=False)
    return out


def energy_histogram(L):
    """Exact density of states g(E) of the L x L torus by enumerating all 2^N configurations.

    Parameters
    ----------
    L : int
        Linear size, 1 <= L <= 4.

    Returns
    -------
    energies : ndarray of int64, shape (n_levels,)
        The distinct total energies E, ascending.
    counts : ndarray of int64, shape (n_levels,)
        g(E), the number of configurations with energy E; sums to 2^N.
    """
    L = check_L(L, 1, MAX_BRUTE_FORCE_L)
    energy, _, counts = _joint_histogram(L)
    levels, inverse = np.unique(energy, return_inverse=True)
    return levels, np.bincount(inverse, weights=counts).astype(np.int64)


def exact_energy_distribution(L, T):
    """Exact Boltzmann distribution of the total energy, P(E) = g(E) exp(-E/T) / Z.

    Parameters
    ----------
    L : int
        Linear size, 1 <= L <= 4.
    T : float
        Temperature, > 0.

    Returns
    -------
    energies : ndarray of int64, shape (n_levels,)
    probabilities : ndarray of float64, shape (n_levels,), summing to 1.
    """
    temps, _, scalar = temperature_array(T)
    if not scalar:
        raise ValueError(f"T must be a scalar, got an array of shape {np.shape(T)}")
    energies, counts = energy_histogram(L)
    log_w = np.log(counts) - energies / temps[0]
    return energies, np.exp(log_w - special.logsumexp(log_w))


def brute_force(L, T):
    """Exact thermodynamics of the L x L torus by summing over all 2^N configurations.

    Sums run over the joint histogram of (E, M) in log space, and the moments are taken
    about the ground-state energy, so u and c keep full relative precision at low T where
    <E^2> - <E>^2 would cancel catastrophically.

    Parameters
    ----------
    L : int
        Linear size, 1 <= L <= 4 (L = 2 counts each neighbouring pair twice; module docstring).
    T : float or ndarray
        Temperature(s), > 0; any shape.

    Returns
    -------
    dict
        ``lnZ``, ``f`` = -T lnZ/N, ``u`` = <E>/N, ``c`` = beta^2 Var(E)/N, ``m_abs`` = <|m|>,
        ``m2`` = <m^2>, ``m4`` = <m^4>; floats for scalar T, else arrays shaped like T.
    """
    L = check_L(L, 1, MAX_BRUTE_FORCE_L)
    temps, shape, scalar = temperature_array(T)
    n = L * L
    energy, magnetization, counts = _joint_histogram(L)
    beta = 1.0 / temps
    log_w = np.log(counts)[None, :] - beta[:, None] * energy[None, :]
    lnz = special.logsumexp(log_w, axis=1)
    p = np.exp(log_w - lnz[:, None])
    excitation = (energy - energy.min()).astype(np.float64)
    mean_excitation = p @ excitation
    variance = np.sum(p * (excitation[None, :] - mean_excitation[:, None]) ** 2, axis=1)
    m = magnetization / n
    values = {"lnZ": lnz, "f": -temps * lnz / n, "u": (energy.min() + mean_excitation) / n,
              "c": beta**2 * variance / n, "m_abs": p @ np.abs(m), "m2": p @ m**2, "m4": p @ m**4}
    return shaped(values, shape, scalar)
