"""Exact references for the 2D Ising model: enumeration (:mod:`.enumeration`), Kaufman's torus and
Onsager's plane (:mod:`.closed_form`). Pure numpy/scipy: the one part of ``workers`` that the
analysis may import, since it is mathematics, not data.
"""

from contract.constants import TC
from workers.exact.closed_form import kaufman, kaufman_c_peak, onsager, spontaneous_magnetization
from workers.exact.enumeration import (MAX_BRUTE_FORCE_L, brute_force, energy_histogram,
                                       exact_energy_distribution, ising_energy)

__all__ = ["TC", "MAX_BRUTE_FORCE_L", "ising_energy", "brute_force", "energy_histogram",
           "exact_energy_distribution", "kaufman", "kaufman_c_peak", "onsager",
           "spontaneous_magnetization"]
