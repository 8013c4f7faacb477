"""Exact answers the report compares against: one implementation, shared with the workers.

Kaufman's finite-torus lnZ, f, u, c and the position of the c peak, Onsager's infinite-lattice
f, u, c and spontaneous magnetization, and Tc live in :mod:`workers.exact` (pure numpy/scipy,
validated against brute-force enumeration); they are re-exported here so the analysis never
keeps a second copy of the formulas.  That module is the one piece of ``workers`` that
``analysis`` may import: it is mathematics, not data, so the analysis still reads nothing but
the Parquet dataset.  The critical exponents of the 2D Ising universality class are below.
"""

from contract.constants import TC
from workers.exact import kaufman, kaufman_c_peak, onsager, spontaneous_magnetization

__all__ = ["TC", "NU", "GAMMA_OVER_NU", "BETA_OVER_NU", "BINDER_CRITICAL", "kaufman",
           "kaufman_c_peak", "onsager", "spontaneous_magnetization"]

NU = 1.0
"""Correlation-length exponent of the 2D Ising universality class."""

GAMMA_OVER_NU = 7.0 / 4.0
"""Susceptibility exponent ratio: chi_max ~ L^(gamma/nu)."""

BETA_OVER_NU = 1.0 / 8.0
"""Magnetization exponent ratio: <|m|>(Tc) ~ L^(-beta/nu)."""

BINDER_CRITICAL = 0.61069
"""U4 at Tc on the periodic square torus, L -> inf (Salas & Sokal, J. Stat. Phys. 98, 551 (2000))."""
