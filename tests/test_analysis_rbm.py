"""RBM signatures against T: synthetic tables that follow contract.schemas exactly.

Exact: the Bures-Wasserstein distance against the full-matrix formula and workers.measures.transport.
Statistical: a signature curve with a known peak / inflection is located within its error bar.
Behavioural: signature tables from a synthetic RBM stage (two seeds, two checkpoints).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import linalg

from analysis import read_table
from analysis.rbm_signatures import (bures_wasserstein, feature_location, signature_features,
                                     signature_table, transport_speed)
from contract.schemas import SCHEMAS

PEAK_T = 2.35


def _write(out: Path, table: str, L: int, task_id: str, columns: dict) -> None:
    """Append rows to the task's one part of ``table`` (the layout the loaders read)."""
    path = out / table / f"L{L}" / f"part-{task_id}.parquet"
    new = _arrow(table, columns)
    if path.exists():
        new = pa.concat_tables([pq.read_table(path, schema=SCHEMAS[table]), new])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(new, path)


def _arrow(table: str, columns: dict) -> pa.Table:
    schema = SCHEMAS[table]
    n = max(len(v) if isinstance(v, (list, np.ndarray)) else 1 for v in columns.values())
    arrays = []
    for field in schema:
        v = columns.get(field.name)
        if v is None:
            arrays.append(pa.nulls(n, field.type))
        else:
            v = list(v) if isinstance(v, (list, np.ndarray)) else [v] * n
            arrays.append(pa.array(v, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_synthetic_rbm_tables(out: Path, sizes=(4, 8), temps=None, seeds=(0, 1), rng_seed=0) -> None:
    """A plausible RBM stage: KL peaks at PEAK_T, fields turn block-like below it."""
    rng = np.random.default_rng(rng_seed)
    temps = np.linspace(2.0, 2.7, 8) if temps is None else temps
    for L in sizes:
        nv, nh, init_std = L * L, 4, 0.05
        for T in temps:
            for seed in seeds:
                tid = hashlib.sha256(f"syn{L}x{T:.4f}s{seed}".encode()).hexdigest()[:16]
                key = {"task_id": tid, "L": L, "T": float(T), "sample_task": f"s-{L}-{T:.4f}",
                       "n_visible": nv, "n_hidden": nh, "method": "pcd", "rbm_seed": seed}
                W0 = init_std * rng.standard_normal((nv, nh))
                field = np.zeros((L, L))
                field[: L // 2, : L // 2] = 1.0
                blockiness = 1 / (1 + np.exp((T - PEAK_T) / 0.1))
                W1 = np.stack([np.roll(field, (j, 2 * j), (0, 1)).ravel() * blockiness
                               + 0.2 * rng.standard_normal(nv) for j in range(nh)], axis=1)
                kl = 0.05 * np.exp(-(((T - PEAK_T) / 0.15) ** 2)) + 0.002 * rng.standard_normal()
                for epoch, W in ((0, W0), (20, W1)):
                    ck = {**key, "epoch": epoch}
                    _write(out, "rbm_params", L, tid, {**ck, "init_std": init_std,
                           "a": [np.zeros(nv, np.float32)], "b": [np.zeros(nh, np.float32)],
                           "W": [W.astype(np.float32).ravel()]})
                    eig = np.sort(np.linalg.svd(W, compute_uv=False) ** 2)[::-1]
                    lo, hi = init_std**2 * (np.sqrt(nv) - np.sqrt(nh)) ** 2, init_std**2 * (np.sqrt(nv) + np.sqrt(nh)) ** 2
                    _write(out, "spectra", L, tid, {**ck, "rank": np.arange(nh), "eigenvalue": eig,
                           "mp_lower": lo, "mp_upper": hi, "lambda_max": eig[0],
                           "n_outliers": int(np.sum(eig > hi)), "effective_rank": 2.0, "numerical_rank": nh,
                           "psd_ok": True, "rank_ok": True})
                    _write(out, "free_energy", L, tid, {**ck, "lnZ_rbm": 1.0, "lnZ_rbm_err": 0.0,
                           "lnZ_method": "exact", "lnZ_ising": 2.0, "nll_train": 0.5 + kl, "nll_test": 0.51 + kl,
                           "F_data_mean": -3.0, "F_model_mean": -3.1,
                           "kl_per_spin": kl if epoch else 0.3, "heff_slope": 1 - blockiness / 2,
                           "heff_r2": 0.9 - kl})
                    units = np.repeat(np.arange(nh), 2 if L >= 8 else 1)
                    blocks = np.tile([2, 4] if L >= 8 else [2], nh)
                    score = np.clip(blocks**2 / L**2 + 0.5 * blockiness * (epoch > 0)
                                    + 0.02 * rng.standard_normal(units.size), 0, 1)
                    null = np.clip(blocks**2 / L**2 + 0.02 * rng.standard_normal(units.size), 0, 1)
                    _write(out, "rg_alignment", L, tid, {**ck, "unit": units, "block": blocks,
                           "score": score, "baseline": blocks**2 / L**2, "null_score": null,
                           "excess": score - null, "row": 0, "col": 0, "corr": 0.5,
                           "null_corr": 0.5 - 0.3 * blockiness * (epoch > 0)})
                    _write(out, "transport", L, tid, {**ck, "w2_to_init": 1.0, "w2_to_prev": 0.5,
                           "path_length": 1.0})
                manifest = out / "_tasks" / f"L{L}" / f"train-{tid}.json"
                manifest.parent.mkdir(parents=True, exist_ok=True)
                manifest.write_text(json.dumps({"task_id": tid, "kind": "train", "L": L, "T": float(T)}))
                _write(out, "rbm", L, tid, {**key, "k": 1, "learning_rate": 0.01, "epochs": 20, "batch_size": 50,
                       "init_std": init_std, "n_train": 800, "n_test": 200, "kl_per_spin": kl,
                       "e": -1.5 + 0.01 * rng.standard_normal(), "e_err": 0.01, "mc_e": -1.5, "mc_e_err": 0.01,
                       "m_abs": 0.5, "m_abs_err": 0.02, "mc_m_abs": 0.5, "mc_m_abs_err": 0.02,
                       "C": 1.0, "C_err": 0.1, "mc_C": 1.1, "mc_C_err": 0.1, "chi": 2.0, "chi_err": 0.2,
                       "mc_chi": 2.0, "mc_chi_err": 0.2, "w1_e": 0.01, "w1_m": 0.02, "wall_s": 1.0})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("rbm")
    write_synthetic_rbm_tables(out)
    return out


def _tables(out):
    return {name: read_table(out, name) for name in ("rbm", "free_energy", "spectra", "rg_alignment",
                                                      "rbm_params")}


def test_bures_wasserstein_matches_full_formula():
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((16, 3)), rng.standard_normal((16, 5))
    S1, S2 = W1 @ W1.T, W2 @ W2.T
    r1 = linalg.sqrtm(S1)
    full = np.trace(S1) + np.trace(S2) - 2 * np.trace(linalg.sqrtm(r1 @ S2 @ r1)).real
    assert bures_wasserstein(W1, W2) ** 2 == pytest.approx(full, rel=1e-6)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    assert bures_wasserstein(W1, W1 @ Q) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError):
        bures_wasserstein(W1, rng.standard_normal((9, 3)))


def test_signature_table_uses_final_checkpoint_and_averages_seeds(synthetic):
    tables = _tables(synthetic)
    sig = signature_table(tables)
    names = set(sig["signature"])
    assert {"kl_per_spin", "nll_test", "heff_r2", "heff_slope", "lambda_max", "n_outliers",
            "alignment_b2", "alignment_b4", "bw_speed", "rbm_minus_mc_z_e", "w1_e"} <= names
    kl = sig[(sig["signature"] == "kl_per_spin") & (sig["L"] == 8)].sort_values("T")
    fe = tables["free_energy"]
    final = fe[(fe["epoch"] == 20) & (fe["L"] == 8)].groupby("T")["kl_per_spin"].mean()
    np.testing.assert_allclose(kl["value"], final.sort_index().to_numpy())
    assert np.all(np.isfinite(kl["err"]))  # two seeds give an error bar
    assert len(sig[(sig["signature"] == "alignment_b4") & (sig["L"] == 4)]) == 0
    speed = transport_speed(tables["rbm_params"])
    assert len(speed) == 2 * 2 * 7  # sizes x seeds x neighbouring pairs
    assert np.all(speed["w2"] >= 0)


def test_alignment_excess_is_read_against_the_permuted_null(synthetic):
    sig = signature_table(_tables(synthetic))
    ex = sig[(sig["signature"] == "alignment_excess_b2") & (sig["L"] == 8)].sort_values("T")
    blockiness = 1 / (1 + np.exp((ex["T"] - PEAK_T) / 0.1))
    # planted: the trained score exceeds the null by 0.5 * blockiness; at epoch 0 by nothing
    assert np.all(np.abs(ex["value"] - 0.5 * blockiness) < 4 * ex["err"] + 0.01)
    assert np.all(np.abs(ex["null"]) < 4 * ex["null_err"] + 0.01)
    corr = sig[(sig["signature"] == "corr_excess_b2") & (sig["L"] == 8)].sort_values("T")
    np.testing.assert_allclose(corr["value"], 0.3 * blockiness, atol=1e-9)
    assert set(sig.columns) >= {"null", "null_err", "n_seeds"}
    assert (sig[sig["signature"] == "kl_per_spin"]["null"] == 0.3).all()  # epoch 0


def test_hidden_units_table_needs_two_sizes_and_reports_relative_errors():
    from analysis.rbm_signatures import hidden_units_table
    import pandas as pd

    rows = []
    for nh, err in ((4, 0.2), (16, 0.05), (64, 0.01)):
        for seed in (0, 1):
            rows.append(dict(L=8, T=2.3, n_hidden=nh, method="pcd", rbm_seed=seed, task_id=f"{nh}{seed}",
                             e=-1.5 * (1 - err), e_err=0.001, mc_e=-1.5, mc_e_err=0.001,
                             C=1.0 * (1 + err + 0.01 * seed), C_err=0.01, mc_C=1.0, mc_C_err=0.01,
                             m_abs=0.5, m_abs_err=0.01, mc_m_abs=0.5, mc_m_abs_err=0.01,
                             chi=1.0, chi_err=0.1, mc_chi=1.0, mc_chi_err=0.1))
    table = hidden_units_table(pd.DataFrame(rows))
    assert list(table["n_hidden"]) == [4, 16, 64]
    np.testing.assert_allclose(table["rel_e"], [-0.2, -0.05, -0.01])
    np.testing.assert_allclose(table["rel_C"], [0.205, 0.055, 0.015])
    np.testing.assert_allclose(table["rel_C_err"], 0.005)  # over two seeds
    one_size = pd.DataFrame([r for r in rows if r["n_hidden"] == 4])
    assert hidden_units_table(one_size).empty


def test_signature_features_find_the_planted_peak(synthetic):
    sig = signature_table(_tables(synthetic))
    feats = signature_features(sig, np.random.default_rng(1), n_boot=200)
    kl = feats[(feats["signature"] == "kl_per_spin") & (feats["kind"] == "peak")]
    assert len(kl) == 2
    for _, row in kl.iterrows():
        assert abs(row["T_feature"] - PEAK_T) < 3 * row["T_feature_err"] + 1e-9, row.to_dict()
        assert row["T_feature_err"] < 0.1
    align = feats[(feats["signature"] == "alignment_b2") & (feats["kind"] == "steepest")]
    assert np.all(np.abs(align["T_feature"] - PEAK_T) < 0.1)


def test_feature_location_statistics():
    rng = np.random.default_rng(4)
    T = np.linspace(2.0, 2.6, 25)
    sigma = np.full(T.size, 0.01)
    y = np.exp(-(((T - 2.27) / 0.1) ** 2)) + sigma * rng.standard_normal(T.size)
    peak = feature_location(T, y, sigma, "peak", rng)
    assert abs(peak["T_feature"] - 2.27) < 3 * peak["T_feature_err"] and not peak["at_edge"]
    y = np.tanh((T - 2.4) / 0.08) + sigma * rng.standard_normal(T.size)
    steep = feature_location(T, y, np.full(T.size, np.nan), "steepest", rng)
    assert abs(steep["T_feature"] - 2.4) < 3 * steep["T_feature_err"]
    assert steep["noise"] == "second differences"
    edge = feature_location(T, T, sigma, "peak", rng)
    assert edge["at_edge"]
    with pytest.raises(ValueError):
        feature_location(T, y, sigma, "valley", rng)
