"""Free-energy measures: exact checks against brute-force enumeration of the L x L Ising model."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

from workers.measures.free_energy import (bond_rbm, heff_fit, ising_energy, kl_per_spin, nll_per_spin,
                                 rbm_free_energy)
from workers.rbm.partition import log_partition_bruteforce, log_partition_exact
from workers.rbm.model import RBM

TC = 2.0 / np.log(1.0 + np.sqrt(2.0))


def all_configs(N):
    """Every +-1 configuration of N spins, (2^N, N) int8."""
    bits = (np.arange(2 ** N)[:, None] >> np.arange(N)) & 1
    return (2 * bits - 1).astype(np.int8)


def ising_energy_loops(V, L):
    """Slow reference: H = -sum over sites of s_i (s_right + s_down) on the torus."""
    H = np.zeros(len(V), dtype=np.int64)
    for n, v in enumerate(V):
        for r in range(L):
            for c in range(L):
                s = v[r * L + c]
                H[n] -= s * (v[r * L + (c + 1) % L] + v[((r + 1) % L) * L + c])
    return H


@pytest.fixture(scope="module")
def configs16():
    V = all_configs(16)
    return V, ising_energy(V, 4)


def exact_ising(H, beta):
    """(lnZ, Boltzmann probabilities) by enumeration."""
    log_w = -beta * H
    ln_z = logsumexp(log_w)
    return ln_z, np.exp(log_w - ln_z)


@pytest.mark.parametrize("L", [2, 3, 4, 5])
def test_ising_energy_matches_loops(L):
    rng = np.random.default_rng(L)
    V = np.where(rng.random((50, L * L)) < 0.5, 1, -1).astype(np.int8)
    V[0] = 1  # ground state: H = -2N
    assert_array_equal(ising_energy(V, L), ising_energy_loops(V, L))
    assert ising_energy(V[:1], L)[0] == -2 * L * L


def test_ising_energy_known_values():
    # L=4 ground state -32; checkerboard +32; exactly one flipped spin costs 8
    V = np.ones((3, 16), dtype=np.int8)
    V[1] = np.array([(-1) ** (r + c) for r in range(4) for c in range(4)])
    V[2, 5] = -1
    assert_array_equal(ising_energy(V, 4), [-32, 32, -24])
    with pytest.raises(ValueError, match="shape"):
        ising_energy(V, 3)


@pytest.mark.parametrize("L", [2, 3])
def test_bond_rbm_free_energy_is_beta_h_plus_constant(L):
    # small lattices, including L=2 where every neighbour pair is joined by two bonds
    N, T = L * L, 2.0
    beta = 1.0 / T
    W, a, b = bond_rbm(L, T)
    assert W.shape == (N, 2 * N) and a.shape == (N,) and b.shape == (2 * N,)
    V = all_configs(N)
    F = rbm_free_energy(V, W, a, b)
    assert_allclose(F, beta * ising_energy(V, L) - 2 * N * (beta + np.log(2.0)),
                    rtol=0, atol=1e-11)
    # and the partition functions by brute force over both layers where it is affordable
    if L == 2:
        ln_zi, _ = exact_ising(ising_energy(V, L), beta)
        assert_allclose(log_partition_bruteforce(W, a, b),
                        ln_zi + 2 * N * (beta + np.log(2.0)), rtol=1e-12)


@pytest.mark.parametrize("T", [1.8, 2.269, 3.0])
def test_bond_rbm_is_exact_at_L4(configs16, T):
    V, H = configs16
    L, N, beta = 4, 16, 1.0 / T
    ln_zi, p = exact_ising(H, beta)
    u_exact = (p @ H) / N
    W, a, b = bond_rbm(L, T)
    F = rbm_free_energy(V, W, a, b)
    ln_zr = log_partition_exact(W, a, b)  # n_v = 16 < n_h = 32: enumerates v
    kl = kl_per_spin(p @ F, beta, N, u_exact, ln_zr, ln_zi)
    assert abs(kl) < 1e-8
    slope, r2 = heff_fit(F, beta * H)
    assert abs(slope - 1.0) < 1e-10
    assert abs(r2 - 1.0) < 1e-10
    # NLL of the exact model is the Ising entropy per spin, s = beta (u - f)
    assert_allclose(nll_per_spin((W, a, b), V, ln_zr) * N,
                    np.mean(F) + ln_zr, rtol=1e-14)
    assert_allclose((p @ F + ln_zr) / N, (beta * p @ H + ln_zi) / N, rtol=1e-10)


def test_kl_and_nll_match_direct_enumeration(configs16):
    # model at the wrong temperature: KL > 0 and equal to sum_v p log(p/q) computed directly
    V, H = configs16
    N, beta = 16, 1.0 / 2.5
    ln_zi, p = exact_ising(H, beta)
    W, a, b = bond_rbm(4, 3.2)
    F = rbm_free_energy(V, W, a, b)
    ln_zr = log_partition_exact(W, a, b)
    log_q = -F - ln_zr
    assert_allclose(logsumexp(log_q), 0.0, atol=1e-10)
    kl_direct = p @ (np.log(p) - log_q) / N
    kl = kl_per_spin(p @ F, beta, N, (p @ H) / N, ln_zr, ln_zi)
    assert kl > 1e-4
    assert_allclose(kl, kl_direct, rtol=1e-9)
    rows = np.random.default_rng(0).choice(len(V), size=500, p=p)
    assert_allclose(nll_per_spin((W, a, b), V[rows], ln_zr), -log_q[rows].mean() / N, rtol=1e-12)
    model = RBM.from_params(W, a, b)
    # float32 parameters in the estimator: agreement to single precision only
    assert_allclose(nll_per_spin(model, V[rows], ln_zr), -log_q[rows].mean() / N, rtol=1e-5)


def test_heff_fit_known_line_and_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    slope, r2 = heff_fit(3.0 * x - 7.0, x)
    assert_allclose([slope, r2], [3.0, 1.0], rtol=1e-12)
    noise = rng.normal(size=200)
    y = 2.0 * x + noise
    slope, r2 = heff_fit(y, x)
    assert_allclose(slope, np.polyfit(x, y, 1)[0], rtol=1e-12)
    assert_allclose(r2, np.corrcoef(x, y)[0, 1] ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        heff_fit(x, np.ones_like(x))


def test_bond_rbm_validates():
    with pytest.raises(ValueError, match="L must be"):
        bond_rbm(1, 2.0)
    with pytest.raises(ValueError, match="T must be"):
        bond_rbm(4, 0.0)
    # weight: cosh w = exp(2 beta), visible bias -2w per site
    W, a, _ = bond_rbm(4, TC)
    w = W.max()
    assert_allclose(np.cosh(w), np.exp(2.0 / TC), rtol=1e-14)
    assert_allclose(a, -2.0 * w)
    assert_array_equal((W != 0).sum(axis=0), 2)
    assert_array_equal((W != 0).sum(axis=1), 4)


def _ising_samples(L, T, n, seed):
    """Exact i.i.d. samples of the L = 4 torus by enumeration."""
    V = all_configs(L * L)
    H = ising_energy(V, L)
    _, p = exact_ising(H, 1.0 / T)
    return V[np.random.default_rng(seed).choice(len(V), size=n, p=p)]


def test_heff_fidelity_beyond_m_tells_couplings_from_magnetisation(configs16):
    from workers.measures.free_energy import heff_fidelity

    T = 2.0
    V = _ising_samples(4, T, 4000, 1)
    bH = ising_energy(V, 4) / T
    m = V.mean(axis=1)
    # F = beta H + const: every fit is exact, raw and beyond m
    exact = heff_fidelity(bH + 3.0, bH, m)
    for key in ("heff_slope", "heff_r2", "heff_partial_slope", "heff_partial_r2"):
        assert exact[key] == pytest.approx(1.0, abs=1e-9)
    # F a function of m alone: raw R^2 is large below Tc (beta H tracks |m|), beyond m ~ 0
    only_m = heff_fidelity(-20.0 * m**2 + 2.0 * m**4, bH, m)
    assert only_m["heff_r2"] > 0.3
    assert only_m["heff_partial_r2"] < 1e-6


def test_heff_fidelity_error_bars_cover_the_truth():
    # F = beta H + noise of known size: the partial slope's jackknife errors give z ~ N(0, 1)
    from workers.measures.free_energy import heff_fidelity

    rng = np.random.default_rng(2)
    z = []
    for k in range(40):
        V = _ising_samples(4, 2.5, 600, 100 + k)
        bH = ising_energy(V, 4) / 2.5
        F = bH + rng.normal(0, 2.0, bH.size)
        fit = heff_fidelity(F, bH, V.mean(axis=1))
        z.append((fit["heff_partial_slope"] - 1.0) / fit["heff_partial_slope_err"])
    z = np.array(z)
    assert np.all(np.abs(z) < 4)
    assert 0.6 < np.sqrt(np.mean(z**2)) < 1.45  # 40 draws: RMS of N(0,1) within about 3 s.d.


def test_heff_beyond_m_is_zero_for_any_smooth_function_of_m_not_just_polynomials():
    from workers.measures.free_energy import heff_fidelity

    V = _ising_samples(4, 2.2, 4000, 7)
    bH = ising_energy(V, 4) / 2.2
    m = V.mean(axis=1)
    fit = heff_fidelity(-np.logaddexp(0.0, 16 * m) - 0.5 * np.cos(5 * m), bH, m)
    assert fit["heff_partial_r2"] < 3 * fit["heff_partial_r2_err"] + 1e-3
    few = heff_fidelity(bH[:10], bH[:10], m[:10])  # too few samples: NaN, not an error
    assert all(np.isnan(v) for v in few.values())
