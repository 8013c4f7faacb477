"""The training task: one RBM variant on one (L, T) sample set, measured at every checkpoint.

Per checkpoint (epoch 0, the initialisation, included) it measures what docs/conventions.md lists:
parameters; partition function (exact by enumerating the smaller layer, or AIS with an error
bar), NLL per spin on training and held-out data, KL(p_Ising || p_RBM) per spin, the fidelity of
F(v) as an effective Hamiltonian; the Wishart spectrum of W W^T against Marchenko-Pastur; RG
block alignment per block size; and the Bures-Wasserstein path of N(0, W W^T).  At the end it
samples the trained RBM with persistent block-Gibbs chains and compares e, |m|, C and chi with
the Monte Carlo values of the same samples (Torlai & Melko, PRB 94, 165134, 2016).

Every signature comes with its null and an error bar: KL with a tau_int-aware error (beta H as
a control variate, the AIS error in quadrature); the effective-Hamiltonian fit raw and beyond
the magnetisation, with jackknife errors (epoch 0, the random initialisation, is its null);
the spectrum against the Marchenko-Pastur law of its own bulk (epoch 0 a true Wishart draw);
block alignment beside the same weights with the lattice sites permuted (one fixed permutation
per task).

Randomness: the held-out split derives from the *sample* task's id, so every RBM variant trained
on one sample set holds out the same configurations; training, AIS, the short model chains,
Gibbs sampling and the site permutation draw from independent children of the training task's
own SeedSequence.

The held-out configurations are measured in *chain order* (time order within each Monte Carlo
chain, chains one after the other; the multi-spin sampler stores its 64 chains interleaved), so
that autocorrelation-aware errors see the real time series.
"""

from __future__ import annotations

import math
import time

import numpy as np

from contract.configs import TrainConfig
from contract.layout import samples_array
from contract.timing import phase

from workers.exact import kaufman
from workers.measures.free_energy import heff_fidelity, ising_energy, kl_estimate, nll_per_spin, rbm_free_energy
from workers.ising.observables import thermodynamics
from workers.rbm.partition import log_partition
from workers.rbm.model import RBM
from workers.measures.tables import alignment_rows, columns_of, spectrum_rows, stack, with_constants
from workers.ising.multispin import N_REPLICAS
from workers.measures.transport import transport_path, wasserstein1

__all__ = ["train_task", "held_out_split", "chain_order", "stored_chains", "stored_series", "spread",
           "RBM_SETTINGS"]

#: Config keys passed to :class:`workers.rbm.model.RBM` as they are.
RBM_SETTINGS = ("method", "k", "learning_rate", "momentum", "l1", "l2", "batch_size", "epochs",
                "lr_schedule", "init_std", "init", "centering", "flip_moves", "averaging")

#: Gibbs steps of the short model chains behind F_model_mean at each checkpoint.
MODEL_F_STEPS = 100
#: The final checkpoint's free_energy columns repeated in the rbm row.
FINAL_COLUMNS = ("nll_train", "nll_test", "kl_per_spin", "kl_per_spin_err", "heff_slope",
                 "heff_slope_err", "heff_r2", "heff_r2_err", "heff_partial_slope",
                 "heff_partial_slope_err", "heff_partial_r2", "heff_partial_r2_err")
#: At most this many RBM-generated configurations are recorded for the final observables: the
#: chains are thinned to fit (successive Gibbs steps are strongly correlated anyway).
MAX_RBM_DRAWS = 20_000


def held_out_split(n: int, held_out: float, sample_task_id: str, root_seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a fixed, seeded split shared by all variants of a sample set."""
    key = (int(sample_task_id[:8], 16), int(sample_task_id[8:16], 16), 0x5E11)
    perm = np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=key)).permutation(n)
    n_train = math.floor(n * (1.0 - held_out))
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def stored_chains(ising) -> int:
    """How many Monte Carlo chains a sample set interleaves (64 for multi-spin, else 1)."""
    if ising is None or "algorithm_used" not in ising.column_names:
        return 1
    return N_REPLICAS if ising.column("algorithm_used")[0].as_py() == "multispin" else 1


def stored_series(e: np.ndarray, m: np.ndarray, n_chains: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample series of a stored sample set as :func:`workers.ising.observables.thermodynamics`
    wants them: 1-D for one chain; (records, chains) for interleaved chains (a ragged tail of
    fewer than n_chains samples is dropped), so that errors see each chain's own time order."""
    if n_chains <= 1 or e.size < 2 * n_chains:
        return e, m
    n = e.size // n_chains * n_chains
    return e[:n].reshape(-1, n_chains), m[:n].reshape(-1, n_chains)


def spread(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (repeating when k > n): chain starts that are far
    apart in the chain-ordered held-out set, hence nearly independent."""
    if k <= n:
        return np.linspace(0, n - 1, k).round().astype(int)
    return np.arange(k) % n


def chain_order(indices: np.ndarray, n_chains: int) -> np.ndarray:
    """Stored-sample indices sorted by (chain, time): stored sample j is chain j % n_chains at
    time j // n_chains (workers.ising.simulate, multi-spin); for one chain this is plain sorted order."""
    indices = np.asarray(indices)
    return indices[np.lexsort((indices // n_chains, indices % n_chains))]


def _per_spin(V: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    N = L * L
    return ising_energy(V, L) / N, V.astype(np.float64).mean(axis=1)


class _Checkpoints:
    """Collects the per-checkpoint rows of every table while the RBM trains."""

    def __init__(self, cfg: TrainConfig, train: np.ndarray, test: np.ndarray, exact: dict, rngs, perm):
        self.cfg, self.train, self.test, self.exact = cfg, train, test, exact
        self.ais_rng, self.model_rng = rngs
        self.perm = perm
        self.L, self.beta = cfg.L, 1.0 / cfg.T
        self.beta_H_test = self.beta * ising_energy(test, self.L)
        self.m_test = test.astype(np.float64).mean(axis=1)
        self.rows = {name: [] for name in ("rbm_params", "free_energy", "spectra", "rg_alignment")}
        self.Ws: list[np.ndarray] = []
        self.epochs: list[int] = []
        self.last: dict = {}
        self.seconds = 0.0

    def __call__(self, epoch: int, rbm: RBM) -> None:
        t0 = time.perf_counter()
        W, a, b = rbm.W_.copy(), rbm.a_.copy(), rbm.b_.copy()
        self.Ws.append(W.astype(np.float64))
        self.epochs.append(epoch)
        self.rows["rbm_params"].append({"epoch": epoch, "init_std": rbm.init_std_,
                                        "a": a, "b": b, "W": W.ravel()})
        with phase("measures"):
            self._free_energy(epoch, rbm, W, a, b)
        self._spectra(epoch, W)
        self._alignment(epoch, W, b)
        self.seconds += time.perf_counter() - t0

    def _free_energy(self, epoch, rbm, W, a, b) -> None:
        cfg, N = self.cfg, self.L * self.L
        with phase("lnZ"):
            lnZ, lnZ_err, method = log_partition(W, a, b, method=cfg.log_partition, rng=self.ais_rng,
                                                 data=self.train, max_units=cfg.max_exact_units)
        F_test = rbm_free_energy(self.test, W, a, b)
        # Short model chains started from held-out data: <F> under the model, roughly.
        init = self.test[spread(len(self.test), min(len(self.test), self.cfg.gibbs_chains))]
        model = rbm.sample(len(init), MODEL_F_STEPS, self.model_rng, init=init, thin=MODEL_F_STEPS,
                           flip_moves=True)
        kl = kl_estimate(F_test, self.beta_H_test, self.beta, N, self.exact["u"], lnZ,
                         self.exact["lnZ"], lnZ_err)
        row = {
            "epoch": epoch, "lnZ_rbm": lnZ, "lnZ_rbm_err": lnZ_err, "lnZ_method": method,
            "lnZ_ising": self.exact["lnZ"],
            "nll_train": nll_per_spin((W, a, b), self.train, lnZ), "nll_test": float((F_test.mean() + lnZ) / N),
            "F_data_mean": float(F_test.mean()),
            "F_model_mean": float(rbm_free_energy(model, W, a, b).mean()),
            "kl_per_spin": kl["kl_per_spin"], "kl_per_spin_err": kl["kl_per_spin_err"],
            **heff_fidelity(F_test, self.beta_H_test, self.m_test),
        }
        self.rows["free_energy"].append(row)
        self.last = row

    def _spectra(self, epoch, W) -> None:
        with phase("spectra"):
            self.rows["spectra"].append(with_constants(spectrum_rows(W), epoch=epoch))

    def _alignment(self, epoch, W, b_hidden) -> None:
        with phase("alignment"):
            self._alignment_rows(epoch, W, b_hidden)

    def _alignment_rows(self, epoch, W, b_hidden) -> None:
        for rows in alignment_rows(W, self.L, self.cfg.block_sizes, b_hidden=b_hidden, V=self.test,
                                   perm=self.perm):
            self.rows["rg_alignment"].append(with_constants(rows, epoch=epoch))


def train_task(config: TrainConfig, spawn_key, inputs: dict) -> dict[str, dict]:
    """Train one RBM variant and measure it; returns the columns of the six training tables."""
    cfg = config
    L, T, N = cfg.L, cfg.T, cfg.L * cfg.L
    source = inputs[cfg.sample_task]
    V = samples_array(source["samples"], N)
    train_idx, test_idx = held_out_split(len(V), cfg.held_out, cfg.sample_task, cfg.seed)
    train, test = V[train_idx], V[chain_order(test_idx, stored_chains(source.get("ising")))]

    fit_ss, ais_ss, model_ss, gibbs_ss, perm_ss = np.random.SeedSequence(
        cfg.seed, spawn_key=tuple(spawn_key)).spawn(5)
    ex = kaufman(L, T)
    exact = {"lnZ": float(ex["lnZ"]), "u": float(ex["u"])}
    checkpoints = _Checkpoints(cfg, train, test, exact,
                               (np.random.default_rng(ais_ss), np.random.default_rng(model_ss)),
                               np.random.default_rng(perm_ss).permutation(N))
    rbm = RBM(n_hidden=cfg.n_hidden, random_state=fit_ss, **{k: getattr(cfg, k) for k in RBM_SETTINGS})
    t0 = time.perf_counter()
    with phase("fit"):
        rbm.fit(train, checkpoints=[c for c in cfg.checkpoints if c > 0], callback=checkpoints)
    wall = time.perf_counter() - t0
    train_seconds = max(wall - checkpoints.seconds, 1e-9)

    # RBM-generated observables, beside the MC values of the same data: persistent Gibbs chains
    # with global-flip moves (both sectors), started at held-out configurations (near the model's
    # typical set, so no chain spends its burn-in escaping a stripe state) and burnt in for a
    # fifth of their steps; the chains are independent columns for the errors.
    gibbs_rng = np.random.default_rng(gibbs_ss)
    n_chains, n_steps = cfg.gibbs_chains, cfg.gibbs_steps
    burn_in = n_steps // 5
    thin = max(1, math.ceil(n_chains * (n_steps - burn_in) / MAX_RBM_DRAWS))
    init = test[spread(len(test), n_chains)]
    with phase("gibbs"):
        draws = rbm.sample(n_chains, n_steps - burn_in, gibbs_rng, init=init, burn_in=burn_in, thin=thin,
                           flip_moves=True)
    e_rbm, m_rbm = _per_spin(draws, L)
    rbm_obs = thermodynamics(e_rbm.reshape(-1, n_chains), m_rbm.reshape(-1, n_chains), L, T)
    e_mc, m_mc = _per_spin(V, L)
    mc_obs = thermodynamics(*stored_series(e_mc, m_mc, stored_chains(source.get("ising"))), L, T)

    with phase("transport"):
        path = transport_path(checkpoints.Ws)
    key = {"sample_task": cfg.sample_task, "n_visible": N, "n_hidden": cfg.n_hidden,
           "method": cfg.method, "rbm_seed": cfg.rbm_seed, "layer": 1}

    def with_key(columns: dict) -> dict:
        return with_constants(columns, **key)

    final = checkpoints.last
    obs_keys = ("e", "e_err", "m_abs", "m_abs_err", "C", "C_err", "chi", "chi_err")
    rbm_row = {
        **key, **{k: getattr(cfg, k) for k in RBM_SETTINGS if k != "method"},
        "n_train": len(train), "n_test": len(test),
        "lnZ_rbm": final["lnZ_rbm"], "lnZ_rbm_err": final["lnZ_rbm_err"], "lnZ_method": final["lnZ_method"],
        **{k: final[k] for k in FINAL_COLUMNS},
        **{k: float(rbm_obs[k]) for k in obs_keys},
        **{f"mc_{k}": float(mc_obs[k]) for k in obs_keys},
        "w1_e": float(wasserstein1(e_rbm, e_mc)),
        "w1_m": float(wasserstein1(np.abs(m_rbm), np.abs(m_mc))),
        "m_pos_frac": float(np.mean(m_rbm > 0)), "flip_rate": float(rbm.sample_flip_rate_),
        "wall_s": wall, "train_samples_per_s": len(train) * cfg.epochs / train_seconds,
    }
    return {
        "rbm_params": with_key(columns_of(checkpoints.rows["rbm_params"])),
        "free_energy": with_key(columns_of(checkpoints.rows["free_energy"])),
        "spectra": with_key(stack(checkpoints.rows["spectra"])),
        "rg_alignment": with_key(stack(checkpoints.rows["rg_alignment"])),
        "transport": with_key({"epoch": checkpoints.epochs, **{k: list(v) for k, v in path.items()}}),
        "rbm": rbm_row,
    }
