"""The sampling task: Monte Carlo at one (L, T) to its thermodynamics, samples and series."""

from __future__ import annotations

import numpy as np

from contract.configs import SampleConfig
from contract.layout import pack_spins
from contract.timing import phase
from workers.exact import kaufman
from workers.ising.observables import thermodynamics
from workers.ising.rng import child_seed_sequence
from workers.ising.simulate import simulate

__all__ = ["sample_task", "symmetrize"]


def symmetrize(samples: np.ndarray, seed_seq: np.random.SeedSequence) -> np.ndarray:
    """Give every configuration an independent fair global sign, in place; returns ``samples``.

    At zero field the Ising Boltzmann weight is invariant under s -> -s, so if s is a draw of
    p(s) then so is sigma * s for a fair coin sigma independent of s, and the signed draws are
    exact samples of the full distribution, both magnetisation sectors included.  Below Tc a
    local sampler never crosses between the sectors on its own; without this step the stored
    samples (and every RBM trained on them, and every KL against Kaufman's ln Z, which counts
    both sectors) would see one sector only.  Energies and |m| are unchanged.  The coins come
    from child 2 of the task's seed sequence, so the chain itself is unaffected.
    """
    rng = np.random.default_rng(child_seed_sequence(seed_seq, 2))
    flip = rng.random(samples.shape[0]) < 0.5
    samples[flip] *= -1
    return samples


def _seed_sequence(config: SampleConfig, spawn_key) -> np.random.SeedSequence:
    return np.random.SeedSequence(config.seed, spawn_key=tuple(spawn_key))


def _exact(L: int, T: float) -> dict:
    try:
        ex = kaufman(L, T)
        return {k: float(ex[k]) for k in ("u", "c", "f", "lnZ")}
    except ValueError:  # a lattice Kaufman's torus formula does not cover: no reference
        return {k: float("nan") for k in ("u", "c", "f", "lnZ")}


def sample_task(config: SampleConfig, spawn_key, inputs: dict) -> dict[str, dict]:
    """Monte Carlo for one (L, T): thermodynamics row, stored samples, measurement series.

    The series keep the chain's own signs (they are what reweighting needs); the stored samples
    are symmetrized when the config says so (:func:`symmetrize`).
    """
    L, T = int(config.L), float(config.T)
    seed_seq = _seed_sequence(config, spawn_key)
    with phase("mc"):
        run = simulate(L, T, config.algorithm, config.burn_in, config.samples, config.thin, seed_seq)
    if config.symmetrize:
        symmetrize(run.samples, seed_seq)
    obs = thermodynamics(run.e_series, run.m_series, L, T)
    exact = _exact(L, T)
    n = run.samples.shape[0]
    ising = {
        "algorithm": config.algorithm, "algorithm_used": run.algorithm_used,
        "burn_in": config.burn_in, "n_samples": n, "thin": int(run.thin_used),
        "thin_auto": config.thin == "auto", "symmetrize": bool(config.symmetrize),
        "seed": config.seed,
        "n_measurements": int(np.size(run.e_series)),
        **{k: float(obs[k]) for k in ("e", "e_err", "m_abs", "m_abs_err", "m2", "m4", "C", "C_err",
                                      "chi", "chi_err", "binder", "binder_err", "tau_int_e",
                                      "tau_int_m")},
        "acceptance": float(run.acceptance),
        "exact_u": exact["u"], "exact_c": exact["c"], "exact_f": exact["f"], "exact_lnZ": exact["lnZ"],
        "wall_s": float(run.wall_s), "flips_per_ns": float(run.flips_per_ns),
    }
    # Single-chain samplers give 1-D series; multi-chain ones (n_measurements, n_chains).
    e_series = np.asarray(run.e_series, dtype=np.float64).reshape(len(run.e_series), -1)
    m_series = np.asarray(run.m_series, dtype=np.float64).reshape(e_series.shape)
    n_meas, n_chains = e_series.shape
    return {
        "ising": ising,
        "samples": {"index": np.arange(n, dtype=np.int32), "spins": pack_spins(run.samples)},
        "series": {"chain": np.repeat(np.arange(n_chains, dtype=np.int32), n_meas),
                   "step": np.tile(np.arange(n_meas, dtype=np.int32), n_chains),
                   "e": e_series.T.ravel(), "m": m_series.T.ravel()},  # chain-major
    }
