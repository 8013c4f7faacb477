"""The Ising room: lattice conventions, random streams, the three samplers and their observables.

Metropolis (checkerboard), Wolff clusters and the 64-replica multi-spin coder are numba kernels
behind one entry point, :func:`workers.ising.simulate.simulate`; :mod:`.observables` turns its
series into thermodynamics with autocorrelation-aware errors.
"""
