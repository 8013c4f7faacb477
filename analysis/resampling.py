"""Blocked energy histograms and the block bootstrap (tau_int from :mod:`contract.estimators`).

A measurement series (one row of ``series`` per sweep: e, m per spin) is cut into contiguous
blocks much longer than its integrated autocorrelation time, so block averages are nearly
independent; the bootstrap then resamples blocks, never single measurements (Kunsch 1989;
Newman & Barkema, Monte Carlo Methods in Statistical Physics, sec. 3.4). Series with a ``chain``
column (multi-spin samplers store independent chains) are blocked chain by chain and the blocks
pooled: chains are independent series.

Each block is stored as a histogram over the total energy E = N e (an integer on the torus) with
per-level sums of |m|, m^2, m^4. Every observable of this project is a ratio of such sums, so the
same object serves plain averages, single- and multiple-histogram reweighting and their bootstrap.

tau_int convention (:mod:`contract.estimators`): tau_int = 1/2 + sum_{t>=1} rho(t), cut at Sokal's
automatic window M >= c tau_int(M) (Sokal 1996, sec. 3; Madras & Sokal 1988).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract import estimators

__all__ = ["integrated_time", "BlockedHistogram", "blocked_histogram", "bootstrap_weights",
           "BLOCK_TAUS", "MIN_BLOCKS", "MAX_BLOCKS"]

BLOCK_TAUS = 20
"""Blocks span at least this many integrated autocorrelation times, when the series allows."""

MIN_BLOCKS = 16
"""Never fewer blocks than this; a series too short for both gets shorter blocks (flagged)."""

MAX_BLOCKS = 100
"""More blocks buy little and cost memory (four n_blocks x n_levels arrays per run); raised to
two blocks per chain when there are more chains, so that no chain's data is dropped."""


def integrated_time(x, c: float = 5.0) -> float:
    """tau_int of a 1-d series of at least 2 points (:func:`contract.estimators.integrated_time`),
    never raising for a short series: the analysis reports what the data give."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be a 1-d series of at least 2 points, got shape {x.shape}")
    return estimators.integrated_time(x, c=c, quiet=True)


@dataclass(frozen=True)
class BlockedHistogram:
    """Per-block energy histograms of one (L, T) measurement series.

    Attributes
    ----------
    L, T : lattice size and temperature of the run.
    levels : ndarray of int64, shape (n_levels,), the distinct total energies E, ascending.
    counts : ndarray of float64, shape (n_blocks, n_levels), measurements per block and level.
    m_sums : ndarray of float64, shape (n_blocks, n_levels, 3), per block and level the sums of
        |m|, m^2, m^4 (m per spin).
    tau : float, max of tau_int(e) and tau_int(|m|), in measurements (mean over chains).
    block_length : int, measurements per block.
    short_blocks : bool, True if blocks are shorter than BLOCK_TAUS * tau (error bars are then
        somewhat underestimated).
    """

    L: int
    T: float
    levels: np.ndarray
    counts: np.ndarray
    m_sums: np.ndarray
    tau: float
    block_length: int
    short_blocks: bool

    @property
    def n_blocks(self) -> int:
        return self.counts.shape[0]

    @property
    def n(self) -> int:
        """Measurements used (the oldest n mod block_length of each chain are dropped)."""
        return int(self.counts.sum())

    def totals(self, weights=None):
        """Histogram and m-sums summed over blocks, optionally with bootstrap block weights.

        Parameters
        ----------
        weights : None or ndarray, shape (n_blocks,) or (n_boot, n_blocks)

        Returns
        -------
        H : ndarray, shape (n_levels,) or (n_boot, n_levels)
        S : ndarray, shape (n_levels, 3) or (n_boot, n_levels, 3)
        """
        if weights is None:
            return self.counts.sum(axis=0), self.m_sums.sum(axis=0)
        w = np.asarray(weights, dtype=np.float64)
        return w @ self.counts, np.tensordot(w, self.m_sums, axes=(-1, 0))


def _chains(e, m, chain):
    if chain is None:
        return [(e, m)]
    chain = np.asarray(chain)
    return [(e[chain == c], m[chain == c]) for c in np.unique(chain)]


def blocked_histogram(e, m, L: int, T: float, chain=None, block_length: int | None = None
                      ) -> BlockedHistogram:
    """Cut a measurement series into blocks and histogram each block over E = N e.

    Parameters
    ----------
    e, m : array_like, shape (n,), per-spin energy and signed magnetization, in step order
        (within each chain).
    L : int, lattice size (N = L^2).
    T : float, temperature of the run.
    chain : optional array_like of int, shape (n,); rows of different chains are independent.
    block_length : optional fixed block length. Default: at least ``BLOCK_TAUS * tau`` long,
        with at least MIN_BLOCKS blocks in all (shorter blocks, flagged, if the series is too
        short for both) and at most MAX_BLOCKS (or two per chain), chosen to divide the shortest
        chain so that little data is dropped.

    Returns
    -------
    BlockedHistogram
    """
    e = np.asarray(e, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    if e.shape != m.shape or e.ndim != 1:
        raise ValueError(f"e and m must be 1-d of equal length, got {e.shape} and {m.shape}")
    parts = [p for p in _chains(e, m, chain) if p[0].size >= 2]
    n_total = sum(p[0].size for p in parts)
    if n_total < 2 * MIN_BLOCKS:
        raise ValueError(f"need at least {2 * MIN_BLOCKS} measurements for L={L}, T={T}, got {n_total}")
    tau = float(np.mean([max(integrated_time(pe), integrated_time(np.abs(pm))) for pe, pm in parts]))
    if block_length is None:
        # blocks per chain k from the shortest chain, then block_length = shortest // k, so a chain
        # loses fewer than k measurements to rounding (none when its length is a multiple)
        shortest = min(p[0].size for p in parts)
        k = max(1, shortest // int(np.ceil(BLOCK_TAUS * tau)))
        k = min(k, max(1, max(MAX_BLOCKS, 2 * len(parts)) // len(parts)))
        k = max(k, -(-MIN_BLOCKS // len(parts)))
        block_length = max(1, shortest // k)
    n_sites = L * L
    energy, mag, block_id = [], [], []
    next_block = 0
    for pe, pm in parts:
        k = pe.size // block_length
        if k == 0:
            continue
        drop = pe.size - k * block_length  # the oldest measurements, closest to burn-in
        energy.append(pe[drop:])
        mag.append(pm[drop:])
        block_id.append(next_block + np.repeat(np.arange(k), block_length))
        next_block += k
    energy_total = np.rint(np.concatenate(energy) * n_sites).astype(np.int64)
    mag = np.concatenate(mag)
    block_id = np.concatenate(block_id)
    levels, level_id = np.unique(energy_total, return_inverse=True)
    flat = block_id * levels.size + level_id
    size = next_block * levels.size
    counts = np.bincount(flat, minlength=size).astype(np.float64).reshape(next_block, -1)
    am = np.abs(mag)
    m_sums = np.stack([np.bincount(flat, weights=w, minlength=size).reshape(next_block, -1)
                       for w in (am, am**2, am**4)], axis=-1)
    return BlockedHistogram(int(L), float(T), levels, counts, m_sums, tau, int(block_length),
                            block_length < BLOCK_TAUS * tau)


def bootstrap_weights(n_blocks: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Block multiplicities of ``n_boot`` bootstrap resamples (with replacement).

    Returns
    -------
    ndarray of float64, shape (n_boot, n_blocks); each row sums to n_blocks.
    """
    if n_blocks < 2 or n_boot < 2:
        raise ValueError(f"need n_blocks >= 2 and n_boot >= 2, got {n_blocks} and {n_boot}")
    return rng.multinomial(n_blocks, np.full(n_blocks, 1.0 / n_blocks), size=n_boot).astype(np.float64)
