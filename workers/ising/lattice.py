"""The L x L periodic Ising lattice: random starts, total energy and magnetization.

Conventions (docs/conventions.md, stated once here and cited elsewhere): spins are ``int8`` in {-1, +1}
in an array of shape (L, L); site ``i = row * L + col``; boundaries are periodic;
``H = -J sum_<ij> s_i s_j`` with J = 1 over the 2N bonds "each site to its right and down
neighbour, with wrap-around" (for L = 2 some pairs are therefore bonded twice, which is what
the local field ``h_i = sum of the four neighbours`` used by the samplers implies);
``N = L**2``, ``e = E / N``, ``m = sum_i s_i / N``.
"""

import numpy as np
from numba import njit

__all__ = [
    "random_lattice",
    "total_energy",
    "total_magnetization",
    "check_spins",
]


def random_lattice(L, rng):
    """Independent uniformly random spins (the infinite-temperature state).

    Parameters
    ----------
    L : int >= 2
        Linear size.
    rng : numpy.random.Generator

    Returns
    -------
    spins : ndarray of int8, shape (L, L)
        Values in {-1, +1}.
    """
    L = check_size(L)
    bits = rng.integers(0, 2, size=(L, L), dtype=np.int8)
    return (2 * bits - 1).astype(np.int8)


@njit(cache=True)
def total_energy(spins):
    """Total energy ``E = -sum_{r,c} s[r,c] (s[r,c+1] + s[r+1,c])`` (indices mod L).

    Parameters
    ----------
    spins : ndarray of int8, shape (L, L)

    Returns
    -------
    int
        E, an integer in [-2N, 2N].
    """
    L = spins.shape[0]
    E = 0
    for r in range(L):
        down = r + 1 if r < L - 1 else 0
        for c in range(L):
            right = c + 1 if c < L - 1 else 0
            E -= np.int64(spins[r, c]) * (np.int64(spins[r, right]) + np.int64(spins[down, c]))
    return E


@njit(cache=True)
def total_magnetization(spins):
    """Total magnetization ``M = sum_i s_i``.

    Parameters
    ----------
    spins : ndarray of int8, shape (L, L)

    Returns
    -------
    int
        M, an integer in [-N, N].
    """
    M = 0
    for r in range(spins.shape[0]):
        for c in range(spins.shape[1]):
            M += np.int64(spins[r, c])
    return M


def check_spins(spins):
    """Validate a lattice for the kernels: C-contiguous int8, square, L >= 2, values +-1.

    Raises
    ------
    ValueError
        Naming what is wrong.
    """
    if not isinstance(spins, np.ndarray):
        raise ValueError(f"spins must be a numpy array, got {type(spins).__name__}")
    if spins.dtype != np.int8:
        raise ValueError(f"spins must have dtype int8, got {spins.dtype}")
    if spins.ndim != 2 or spins.shape[0] != spins.shape[1]:
        raise ValueError(f"spins must have shape (L, L), got {spins.shape}")
    check_size(spins.shape[0])
    if not spins.flags.c_contiguous or not spins.flags.writeable:
        raise ValueError("spins must be C-contiguous and writeable (kernels update it in place)")
    if not np.all(np.abs(spins) == 1):
        raise ValueError("spins must contain only -1 and +1")


def check_size(L):
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise ValueError(f"L must be an integer >= 2, got {L!r}")
    return int(L)


def check_count(n, name):
    """A non-negative integer count (sweeps, updates, samples), or ValueError naming it."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {n!r}")
    return int(n)
