"""KL(p_Ising || p_RBM) per spin with its error bar, against exact enumeration at L = 4.

For each (T, n_h) an RBM is trained on Monte Carlo samples and KL is estimated from held-out
samples exactly as the training task does (beta H as a control variate, tau_int-aware error,
ln Z error in quadrature); the exact KL sums over all 2^16 configurations. The z-scores must
be standard normal: every |z| <= 3 and their RMS near 1. Without the global sign the same
estimator is wrong by many error bars below Tc, so the test has power.
"""

import numpy as np
import pyarrow as pa
import pytest
from scipy.special import logsumexp

from workers.exact import kaufman
from workers.measures.free_energy import ising_energy, kl_estimate, rbm_free_energy
from workers.rbm.partition import log_partition, log_partition_exact
from workers.rbm.model import RBM
from contract.configs import SampleConfig
from contract.layout import samples_array
from workers.tasks import sample_task

L, N = 4, 16
TEMPS = (1.8, 2.269185, 2.6, 3.2)
HIDDEN = (4, 8, 16)


def _all_configs():
    bits = (np.arange(2 ** N)[:, None] >> np.arange(N)) & 1
    return (2 * bits - 1).astype(np.int8)


@pytest.fixture(scope="module")
def enumeration():
    V = _all_configs()
    return V, ising_energy(V, L).astype(np.float64)


def _samples(T, symmetrize, n=3000, stream=0):
    cfg = SampleConfig(L=L, T=T, algorithm="metropolis", burn_in=500, samples=n, thin=4,
                       symmetrize=symmetrize, seed=99)
    out = sample_task(cfg, (int(T * 1e6), stream), {})
    table = pa.table({k: out["samples"][k] for k in ("index", "spins")})
    return samples_array(table, N)


def _estimate_and_exact(T, n_h, V_mc, enumeration, ais=False, seed=0):
    V_all, H_all = enumeration
    beta = 1.0 / T
    train, test = V_mc[::2], V_mc[1::2]
    rbm = RBM(n_h, method="cd", learning_rate=0.05, epochs=4, random_state=seed).fit(train)
    W, a, b = rbm.W_, rbm.a_, rbm.b_
    if ais:
        lnZ, lnZ_err, _ = log_partition(W, a, b, method="ais", rng=np.random.default_rng(seed),
                                        data=train)
    else:
        lnZ, lnZ_err = log_partition_exact(W, a, b), 0.0
    ex = kaufman(L, T)
    est = kl_estimate(rbm_free_energy(test, W, a, b), beta * ising_energy(test, L), beta, N,
                      float(ex["u"]), lnZ, float(ex["lnZ"]), lnZ_err)
    log_p = -beta * H_all - logsumexp(-beta * H_all)
    log_q = -rbm_free_energy(V_all, W, a, b) - log_partition_exact(W, a, b)
    exact = float(np.exp(log_p) @ (log_p - log_q)) / N
    return est, exact


@pytest.fixture(scope="module")
def z_scores(enumeration):
    # an independent sample set per pair, so that the z-scores are independent
    rows = []
    for T in TEMPS:
        for stream, n_h in enumerate(HIDDEN):
            est, exact = _estimate_and_exact(T, n_h, _samples(T, True, stream=stream), enumeration)
            rows.append((T, n_h, est, exact))
        V = _samples(T, True, stream=len(HIDDEN))
        est, exact = _estimate_and_exact(T, 8, V, enumeration, ais=True, seed=1)
        rows.append((T, "8 ais", est, exact))
    return rows


def test_kl_z_scores_are_standard_normal(z_scores):
    z = np.array([(est["kl_per_spin"] - exact) / est["kl_per_spin_err"]
                  for _, _, est, exact in z_scores])
    print("z =", np.round(z, 2))
    assert len(z) >= 9
    assert np.all(np.abs(z) <= 3.0), z
    rms = float(np.sqrt(np.mean(z ** 2)))
    # 16 standard normals: the RMS has a standard deviation of about 1/sqrt(32) = 0.18
    assert 0.45 <= rms <= 1.6, (rms, z)


def test_the_control_variate_never_costs_precision(z_scores):
    for T, n_h, est, _ in z_scores:
        assert est["kl_per_spin_err"] <= 1.05 * est["kl_plain_err"], (T, n_h, est)


def test_one_sector_data_is_caught_below_tc(enumeration):
    # What a local sampler gives at larger L below Tc (tests/test_symmetrize.py): every sample
    # in the m >= 0 sector. Kaufman's ln Z counts both sectors, so the same estimator misses
    # the exact KL by many error bars. (At L = 4 Metropolis still crosses, hence the fold.)
    V = _samples(1.8, symmetrize=True)
    V = V * np.where(V.sum(axis=1) < 0, -1, 1).astype(np.int8)[:, None]
    est, exact = _estimate_and_exact(1.8, 8, V, enumeration)
    assert abs(est["kl_per_spin"] - exact) / est["kl_per_spin_err"] > 10
