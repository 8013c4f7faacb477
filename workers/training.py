"""The training task: one RBM variant on one (L, T) sample set, measured at every checkpoint.

Per checkpoint (epoch 0, the initialisation, included) it measures what DESIGN.md lists:
parameters; partition function (exact by enumerating the smaller layer, or AIS with an error
bar), NLL per spin on training and held-out data, KL(p_Ising || p_RBM) per spin, the fidelity of
F(v) as an effective Hamiltonian; the Wishart spectrum of W W^T against Marchenko-Pastur; RG
block alignment per block size; and the Bures-Wasserstein path of N(0, W W^T).  At the end it
samples the trained RBM with persistent block-Gibbs chains and compares e, |m|, C and chi with
the Monte Carlo values of the same samples (Torlai & Melko, PRB 94, 165134, 2016).

Randomness: the held-out split derives from the *sample* task's id, so every RBM variant trained
on one sample set holds out the same configurations; training, AIS and Gibbs sampling draw from
independent children of the training task's own SeedSequence.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .exact import kaufman
from .free_energy import heff_fit, ising_energy, kl_per_spin, nll_per_spin, rbm_free_energy
from .observables import thermodynamics
from .partition import log_partition
from .rbm import RBM
from .rbm_tables import alignment_rows, columns_of, spectrum_rows, stack, with_constants
from .tasks import samples_array
from .transport import transport_path, wasserstein1

__all__ = ["train_task", "held_out_split", "chain_major"]

#: Gibbs steps of the short model chains behind F_model_mean at each checkpoint.
MODEL_F_STEPS = 100
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


def chain_major(draws: np.ndarray, n_chains: int) -> np.ndarray:
    """Record-major draws (R*C, N) -> chain-major (C*R, N): each chain's records contiguous,
    so autocorrelation and blocked errors see within-chain time order."""
    n_v = draws.shape[1]
    return draws.reshape(-1, n_chains, n_v).transpose(1, 0, 2).reshape(-1, n_v)


def _per_spin(V: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    N = L * L
    return ising_energy(V, L) / N, V.astype(np.float64).mean(axis=1)


class _Checkpoints:
    """Collects the per-checkpoint rows of every table while the RBM trains."""

    def __init__(self, cfg: dict, train: np.ndarray, test: np.ndarray, exact: dict, rngs):
        self.cfg, self.train, self.test, self.exact = cfg, train, test, exact
        self.ais_rng, self.model_rng = rngs
        self.L, self.beta = cfg["L"], 1.0 / cfg["T"]
        self.beta_H_test = self.beta * ising_energy(test, self.L)
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
        self._free_energy(epoch, rbm, W, a, b)
        self._spectra(epoch, W)
        self._alignment(epoch, W, b)
        self.seconds += time.perf_counter() - t0

    def _free_energy(self, epoch, rbm, W, a, b) -> None:
        cfg, N = self.cfg, self.L * self.L
        lnZ, lnZ_err, method = log_partition(W, a, b, method=cfg["log_partition"], rng=self.ais_rng,
                                             data=self.train, max_units=cfg["max_exact_units"])
        F_test = rbm_free_energy(self.test, W, a, b)
        # Short model chains started from held-out data: <F> under the model, roughly.
        init = self.test[: min(len(self.test), self.cfg["gibbs_chains"])]
        model = rbm.sample(len(init), MODEL_F_STEPS, self.model_rng, init=init, thin=MODEL_F_STEPS)
        slope, r2 = heff_fit(F_test, self.beta_H_test)
        row = {
            "epoch": epoch, "lnZ_rbm": lnZ, "lnZ_rbm_err": lnZ_err, "lnZ_method": method,
            "lnZ_ising": self.exact["lnZ"],
            "nll_train": nll_per_spin((W, a, b), self.train, lnZ), "nll_test": float((F_test.mean() + lnZ) / N),
            "F_data_mean": float(F_test.mean()),
            "F_model_mean": float(rbm_free_energy(model, W, a, b).mean()),
            "kl_per_spin": float(kl_per_spin(F_test.mean(), self.beta, N, self.exact["u"], lnZ,
                                             self.exact["lnZ"])),
            "heff_slope": slope, "heff_r2": r2,
        }
        self.rows["free_energy"].append(row)
        self.last = row

    def _spectra(self, epoch, W) -> None:
        self.rows["spectra"].append(with_constants(spectrum_rows(W, self.cfg["init_std"]), epoch=epoch))

    def _alignment(self, epoch, W, b_hidden) -> None:
        for rows in alignment_rows(W, self.L, self.cfg["block_sizes"], b_hidden=b_hidden, V=self.test):
            self.rows["rg_alignment"].append(with_constants(rows, epoch=epoch))


def train_task(config: dict, spawn_key, inputs: dict) -> dict[str, dict]:
    """Train one RBM variant and measure it; returns the columns of the six training tables."""
    cfg = config
    L, T, N = cfg["L"], cfg["T"], cfg["L"] * cfg["L"]
    V = samples_array(inputs[cfg["sample_task"]]["samples"], N)
    train_idx, test_idx = held_out_split(len(V), cfg["held_out"], cfg["sample_task"], cfg["seed"])
    train, test = V[train_idx], V[test_idx]

    fit_ss, ais_ss, model_ss, gibbs_ss = np.random.SeedSequence(cfg["seed"], spawn_key=tuple(spawn_key)).spawn(4)
    ex = kaufman(L, T)
    exact = {"lnZ": float(ex["lnZ"]), "u": float(ex["u"])}
    checkpoints = _Checkpoints(cfg, train, test, exact,
                               (np.random.default_rng(ais_ss), np.random.default_rng(model_ss)))
    rbm = RBM(n_hidden=cfg["n_hidden"], method=cfg["method"], k=cfg["k"],
              learning_rate=cfg["learning_rate"], momentum=cfg["momentum"], l1=cfg["l1"],
              l2=cfg["l2"], batch_size=cfg["batch_size"], epochs=cfg["epochs"],
              lr_schedule=cfg["lr_schedule"], init_std=cfg["init_std"], random_state=fit_ss)
    t0 = time.perf_counter()
    rbm.fit(train, checkpoints=[c for c in cfg["checkpoints"] if c > 0], callback=checkpoints)
    wall = time.perf_counter() - t0
    train_seconds = max(wall - checkpoints.seconds, 1e-9)

    # RBM-generated observables from persistent chains, beside the MC values of the same data.
    gibbs_rng = np.random.default_rng(gibbs_ss)
    n_chains, n_steps = cfg["gibbs_chains"], cfg["gibbs_steps"]
    burn_in = n_steps // 5
    thin = max(1, math.ceil(n_chains * (n_steps - burn_in) / MAX_RBM_DRAWS))
    draws = rbm.sample(n_chains, n_steps - burn_in, gibbs_rng, burn_in=burn_in, thin=thin)
    e_rbm, m_rbm = _per_spin(chain_major(draws, n_chains), L)
    rbm_obs = thermodynamics(e_rbm, m_rbm, L, T)
    e_mc, m_mc = _per_spin(V, L)
    mc_obs = thermodynamics(e_mc, m_mc, L, T)

    path = transport_path(checkpoints.Ws)
    key = {"sample_task": cfg["sample_task"], "n_visible": N, "n_hidden": cfg["n_hidden"],
           "method": cfg["method"], "rbm_seed": cfg["rbm_seed"], "layer": 1}

    def with_key(columns: dict) -> dict:
        return with_constants(columns, **key)

    final = checkpoints.last
    obs_keys = ("e", "e_err", "m_abs", "m_abs_err", "C", "C_err", "chi", "chi_err")
    rbm_row = {
        **key, **{k: cfg[k] for k in ("k", "learning_rate", "momentum", "lr_schedule", "epochs",
                                       "batch_size", "l1", "l2", "init_std")},
        "n_train": len(train), "n_test": len(test),
        "lnZ_rbm": final["lnZ_rbm"], "lnZ_rbm_err": final["lnZ_rbm_err"], "lnZ_method": final["lnZ_method"],
        **{k: final[k] for k in ("nll_train", "nll_test", "kl_per_spin", "heff_slope", "heff_r2")},
        **{k: float(rbm_obs[k]) for k in obs_keys},
        **{f"mc_{k}": float(mc_obs[k]) for k in obs_keys},
        "w1_e": float(wasserstein1(e_rbm, e_mc)),
        "w1_m": float(wasserstein1(np.abs(m_rbm), np.abs(m_mc))),
        "wall_s": wall, "train_samples_per_s": len(train) * cfg["epochs"] / train_seconds,
    }
    return {
        "rbm_params": with_key(columns_of(checkpoints.rows["rbm_params"])),
        "free_energy": with_key(columns_of(checkpoints.rows["free_energy"])),
        "spectra": with_key(stack(checkpoints.rows["spectra"])),
        "rg_alignment": with_key(stack(checkpoints.rows["rg_alignment"])),
        "transport": with_key({"epoch": checkpoints.epochs, **{k: list(v) for k, v in path.items()}}),
        "rbm": rbm_row,
    }
