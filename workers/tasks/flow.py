"""The flow tasks: three RG flows of one lattice size side by side, on the same samples.

A ``levels`` task (one per temperature) runs the first two on that temperature's samples:

* ``blockspin`` — b x b majority rule applied to the stored Monte Carlo samples, level after
  level while the lattice is at least 4 x 4; at each level the renormalized temperature T' is
  the temperature at which the Monte Carlo energy curve of the *same coarse size* from the same
  sweep equals the coarse configurations' energy (monotone cubic interpolation; error by
  first-order propagation).  Tc is the unstable fixed point: T' < T below, T' > T above.
* ``stacked`` — RBMs stacked greedily (Mehta & Schwab 2014), layer k trained on the sampled
  hidden units of layer k-1; per layer the receptive fields projected to the lattice
  (W1 W2 ... Wk), their extent (radius of gyration on the torus) and their block alignment.

The ``pool`` task (one per size) runs the third:

* ``rbmflow`` — one RBM trained on ``pool_samples`` configurations drawn evenly from every
  temperature of this L (:func:`pool_indices`); v -> h -> v iterated from the samples of each T
  (Iso, Shiba & Yokoo 2018); the temperature of the generated configurations from matching
  (e, |m|) jointly to the Monte Carlo curves of L.
"""

from __future__ import annotations

import numpy as np

from contract.configs import FlowConfig
from contract.constants import RBM_FLOW_CONFIGS
from contract.layout import samples_array
from contract.schemas import SCHEMAS
from contract.timing import phase

from workers.rbm.model import RBM
from workers.rg.blockspin import blockspin_levels, configuration_observables, match_temperature, match_temperature_joint
from workers.measures.tables import alignment_rows, columns_of, spectrum_rows, stack, with_constants
from workers.rg.stacked import field_extent, projected_fields, rbm_flow, train_stack

__all__ = ["flow_task", "mc_curves", "pool_indices"]

#: The tables of the RBMs a levels task trains (empty for the pooled task).
LAYER_TABLES = ("rbm_params", "spectra", "rg_alignment")
_NAN = float("nan")


def mc_curves(ising_tables) -> dict[str, np.ndarray]:
    """Monte Carlo curves of one lattice size against T from its ``ising`` rows."""
    rows = sorted((t.to_pylist()[0] for t in ising_tables), key=lambda r: r["T"])
    return {k: np.array([r[k] for r in rows], dtype=float)
            for k in ("T", "e", "e_err", "m_abs", "m_abs_err", "binder", "binder_err")}


def _flow_row(source, T, kind, level, size, **values) -> dict:
    row = {"source_task": source, "T": T, "kind": kind, "level": level, "size": size,
           "T_eff": _NAN, "T_eff_err": _NAN, "e": _NAN, "e_err": _NAN, "m_abs": _NAN, "m_abs_err": _NAN,
           "binder": _NAN, "binder_err": _NAN, "extent": _NAN, "mean_alignment": _NAN,
           "match_chi2": _NAN}
    row.update(values)
    return row


def _observables(obs: dict) -> dict:
    return {k: float(obs[k]) for k in ("e", "e_err", "m_abs", "m_abs_err", "binder", "binder_err")}


def _blockspin(source, T, configs, cfg, curves, rng) -> list[dict]:
    rows = []
    for level, coarse in enumerate(blockspin_levels(configs, cfg.block, rng)):
        size = coarse.shape[1]
        obs = configuration_observables(coarse, T)
        T_eff = T_err = _NAN
        if size in curves:
            c = curves[size]
            T_eff, T_err = match_temperature(obs["e"], obs["e_err"], c["T"], c["e"], c["e_err"], method="pchip")
        rows.append(_flow_row(source, T, "blockspin", level, size, T_eff=T_eff, T_eff_err=T_err,
                              **_observables(obs)))
    return rows


class _LayerTables:
    """rbm_params / spectra / rg_alignment rows of the RBMs a flow trains (layer column = depth)."""

    def __init__(self, cfg: FlowConfig, perm: np.ndarray):
        self.cfg, self.perm = cfg, perm
        self.rows = {name: [] for name in LAYER_TABLES}

    def add(self, source, T, layer, W, a, b, field, V_test=None) -> float:
        """Record one layer; returns its mean alignment at the flow's block size for this depth."""
        cfg, L = self.cfg, self.cfg.L
        n_v, n_h = W.shape
        key = {"T": T, "sample_task": source, "n_visible": n_v, "n_hidden": n_h, "method": cfg.method,
               "rbm_seed": 0, "layer": layer, "epoch": cfg.epochs}
        self.rows["rbm_params"].append({**key, "init_std": cfg.init_std, "a": a, "b": b, "W": W.ravel()})
        with phase("spectra"):
            self.rows["spectra"].append(with_constants(spectrum_rows(W), **key))
        # Alignment of the receptive field projected to the lattice; the blocks a layer of depth
        # k should see are b^k wide (block-spin RG), capped at L/2.  corr only for layer 1,
        # whose projected field is its own W.
        target = min(cfg.block ** layer, L // 2)
        mean_at_target = _NAN
        corr_from = {"b_hidden": b, "V": V_test} if layer == 1 else {}
        with phase("alignment"):
            rows_per_block = alignment_rows(field, L, cfg.block_sizes, perm=self.perm, **corr_from)
        for block, rows in zip(cfg.block_sizes, rows_per_block):
            self.rows["rg_alignment"].append(with_constants(rows, **{**key, "n_visible": L * L}))
            if block == target:
                mean_at_target = float(np.mean(rows["score"]))
        return mean_at_target

    def columns(self) -> dict[str, dict]:
        params = self.rows["rbm_params"]
        return {"rbm_params": columns_of(params),
                "spectra": stack(self.rows["spectra"]), "rg_alignment": stack(self.rows["rg_alignment"])}


def _rbm_kwargs(cfg: FlowConfig) -> dict:
    return {"method": cfg.method, "k": cfg.k, "learning_rate": cfg.learning_rate,
            "momentum": cfg.momentum, "l2": cfg.l2, "batch_size": cfg.batch_size,
            "epochs": cfg.epochs, "init_std": cfg.init_std, "centering": cfg.centering,
            "flip_moves": cfg.flip_moves, "averaging": cfg.averaging}


def _stacked(source, T, V, cfg, layers: _LayerTables, rng) -> list[dict]:
    with phase("stack_fit"):
        stack = train_stack(V, cfg.layers, _rbm_kwargs(cfg), rng)
    Ws = [r.W_.astype(np.float64) for r in stack["rbms"]]
    rows = []
    for depth, (rbm, field) in enumerate(zip(stack["rbms"], projected_fields(Ws)), start=1):
        mean_alignment = layers.add(source, T, depth, rbm.W_, rbm.a_, rbm.b_, field,
                                    V_test=V if depth == 1 else None)
        rows.append(_flow_row(source, T, "stacked", depth, rbm.W_.shape[1],
                              extent=float(np.nanmean(field_extent(field, cfg.L))),
                              mean_alignment=mean_alignment))
    return rows


def pool_indices(sizes: list[int], total: int) -> list[np.ndarray]:
    """Which configurations of each temperature the pooled RBM trains on: ``total`` in all, the
    same number from each (the first ``total % len(sizes)`` temperatures one more; never more
    than a temperature has), evenly spaced in chain order."""
    k = len(sizes)
    out = []
    for i, n in enumerate(sizes):
        m = min(n, total // k + (i < total % k))
        out.append((np.arange(m, dtype=np.int64) * n) // max(m, 1))
    return out


def _pool_inputs(sources, inputs, cfg) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The pooled RBM's training set and each temperature's first RBM_FLOW_CONFIGS, unpacking
    one temperature at a time (all of L's samples unpacked at once: ~11 bytes per spin with the
    training's copies, 17 GiB at L = 64 with 37 temperatures of 10,000)."""
    picks = pool_indices([inputs[s]["samples"].num_rows for _, s in sources], cfg.pool_samples)
    train, starts = [], {}
    for (_, s), idx in zip(sources, picks):
        V = samples_array(inputs[s]["samples"], cfg.L * cfg.L)
        train.append(V[idx])
        starts[s] = V[:RBM_FLOW_CONFIGS].copy()
    return np.concatenate(train), starts


def _rbmflow(sources, inputs, cfg, curve, rng) -> list[dict]:
    train, starts = _pool_inputs(sources, inputs, cfg)
    with phase("pool_fit"):
        rbm = RBM(n_hidden=cfg.rbm_flow_hidden, random_state=rng, **_rbm_kwargs(cfg)).fit(train)
    with phase("pool_flow"):
        return _follow(rbm, sources, starts, cfg, curve, rng)


def _follow(rbm, sources, data, cfg, curve, rng) -> list[dict]:
    """v -> h -> v from each temperature's first configurations (``data``: source id -> them),
    matched to the MC curves."""
    rows = []
    for T, source in sources:
        V0 = data[source][:RBM_FLOW_CONFIGS]
        for step, V in enumerate(rbm_flow(rbm, V0, cfg.rbm_flow_steps, rng)):
            obs = configuration_observables(V, T, L=cfg.L)
            T_eff, T_err, chi2 = match_temperature_joint(
                [obs["e"], obs["m_abs"]], [obs["e_err"], obs["m_abs_err"]], curve["T"],
                [curve["e"], curve["m_abs"]], [curve["e_err"], curve["m_abs_err"]])
            # chi2 (1 degree of freedom) says whether any MC temperature reproduces e and |m|
            # together; a large value means the generated configurations are not Ising-like.
            rows.append(_flow_row(source, T, "rbmflow", step, cfg.L, T_eff=T_eff, T_eff_err=T_err,
                                  match_chi2=float(chi2), **_observables(obs)))
    return rows


def flow_task(config: FlowConfig, spawn_key, inputs: dict) -> dict[str, dict]:
    """One part of the flows of one lattice size; returns rg_flow, rbm_params, spectra and
    rg_alignment (the pooled part records no layers: its three layer tables are empty)."""
    cfg, L = config, config.L
    blk_ss, stack_ss, flow_ss, perm_ss = np.random.SeedSequence(
        cfg.seed, spawn_key=tuple(spawn_key)).spawn(4)
    curves = {Lc: mc_curves([inputs[s]["ising"] for _, s in members]) for Lc, members in cfg.curves}
    if cfg.part == "pool":
        rows = _rbmflow(sorted(cfg.sources), inputs, cfg, curves[L], np.random.default_rng(flow_ss))
        return {"rg_flow": columns_of(rows), **{name: {c: [] for c in SCHEMAS[name].names} for name in LAYER_TABLES}}
    layers = _LayerTables(cfg, np.random.default_rng(perm_ss).permutation(L * L))
    ((T, source),) = cfg.sources
    V = samples_array(inputs[source]["samples"], L * L)
    with phase("blockspin"):
        rows = _blockspin(source, T, V.reshape(-1, L, L), cfg, curves, np.random.default_rng(blk_ss))
    rows += _stacked(source, T, V, cfg, layers, np.random.default_rng(stack_ss))
    return {"rg_flow": columns_of(rows), **layers.columns()}
