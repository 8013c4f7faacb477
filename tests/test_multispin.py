"""Multi-spin coding: exact tests of every kernel against slow references, statistical tests of
the 64-replica sampler against enumeration (L = 4) and Kaufman (L = 16), and the behaviour of
``simulate(..., "multispin")`` and of ``thermodynamics`` on 2-D (independent chain) series.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.stats import chisquare

from contract.sampler_costs import TC, choose_algorithm
from workers.ising.simulate import simulate
from workers.ising.lattice import random_lattice, total_energy, total_magnetization
from workers.ising.multispin import (_count_bits, _multispin_reference, multispin_sweeps, pack_replicas,
                               random_replicas, replica_energy_magnetization, threshold_digits,
                               unpack_replicas)
from contract.estimators import chain_integrated_time
from workers.ising.observables import thermodynamics
from workers.ising.rng import reference_xoroshiro128pp, make_rng_state, random_words

SEED = 8675309


def _words_and_state(L, key):
    seq = np.random.SeedSequence(SEED, spawn_key=(key,))
    return random_replicas(L, np.random.default_rng(seq)), make_rng_state(seq)


def _energies(configs):
    s = configs.astype(np.int64)
    return -(s * (np.roll(s, -1, -1) + np.roll(s, -2 + 1, -2))).sum(axis=(-1, -2))


# --- rng ---------------------------------------------------------------------------------------

def test_xoroshiro128plusplus_matches_vigna_c_code():
    # first outputs of Vigna's xoroshiro128plusplus.c from s = {1, 2}, computed with gcc
    expected = [393217, 669327710093319, 1732421326133921491, 11394790081659126983,
                9555452776773192676]
    assert random_words(np.array([1, 2], dtype=np.uint64), 5).tolist() == expected
    state = np.array([1, 2], dtype=np.uint64)
    assert [reference_xoroshiro128pp(state) for _ in range(5)] == expected
    state = np.array([0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9], dtype=np.uint64)
    assert int(random_words(state, 1001)[-1]) == 14447007850988669791


def test_random_words_have_uniform_independent_bits():
    words = random_words(make_rng_state(np.random.SeedSequence(SEED)), 20_000)
    bits = (words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    ones = bits.sum(axis=0).astype(float)
    # every bit position, including the lowest, is fair: z-scores of 64 binomial counts
    z = (ones - 10_000) / np.sqrt(5_000)
    assert np.max(np.abs(z)) < 4.5
    # the lowest bit of successive words is not an LFSR: pairs (b_t, b_{t+1}) are uniform
    low = bits[:, 0].astype(int)
    assert chisquare(np.bincount(2 * low[:-1] + low[1:], minlength=4)).pvalue > 1e-3


# --- kernels against references ----------------------------------------------------------------

@pytest.mark.parametrize("L, T", [(8, 2.0), (6, 3.0), (2, 2.5), (4, 0.5), (8, 2.269185)])
def test_multispin_matches_reference(L, T):
    words, state = _words_and_state(L, int(10 * T) + L)
    ref_words, ref_state = words.copy(), state.copy()
    accepted = multispin_sweeps(words, 1.0 / T, 3, state)
    ref_accepted = _multispin_reference(ref_words, 1.0 / T, 3, ref_state)
    assert accepted == ref_accepted > 0
    assert_array_equal(words, ref_words)
    assert_array_equal(state, ref_state)


def test_multispin_infinite_temperature_limit_flips_everything():
    # beta = 1e-18: p rounds to 1 at 53 bits, so every replica flips at every site, drawing nothing
    digits, always = threshold_digits(1e-18)
    assert np.all(always == np.uint64(2**64 - 1))
    words, state = _words_and_state(6, 1)
    start, start_state = words.copy(), state.copy()
    ref_words, ref_state = words.copy(), state.copy()
    assert multispin_sweeps(words, 1e-18, 1, state) == 64 * 36
    assert _multispin_reference(ref_words, 1e-18, 1, ref_state) == 64 * 36
    assert_array_equal(words, ~start)
    assert_array_equal(ref_words, ~start)
    assert_array_equal(state, start_state)


def test_threshold_digits_are_the_binary_expansion():
    beta = 0.44
    digits, always = threshold_digits(beta)
    for row, p in enumerate((np.exp(-4 * beta), np.exp(-8 * beta))):
        t = int(np.ceil(p * 2.0**53))
        rebuilt = sum(1 << (52 - i) for i in range(53) if digits[row, i])
        assert rebuilt == t and always[row] == 0
        assert set(np.unique(digits[row]).tolist()) <= {0, 2**64 - 1}


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6, 8, 10])
def test_replica_energy_magnetization_match_scalar_counts(L):
    words, _ = _words_and_state(L, 40 + L)
    E, M = replica_energy_magnetization(words)
    configs = unpack_replicas(words)
    for k in range(64):
        assert E[k] == total_energy(configs[k])
        assert M[k] == total_magnetization(configs[k])
    up = np.ones((L, L), dtype=np.uint64) * np.uint64(2**64 - 1)
    E, M = replica_energy_magnetization(up)
    assert np.all(E == -2 * L * L) and np.all(M == L * L)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 200])
def test_count_bits_is_a_vertical_popcount(n):
    x = random_words(make_rng_state(np.random.SeedSequence(n)), n)
    planes = np.zeros(40, dtype=np.uint64)
    _count_bits(x, planes)
    counts = (planes[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    got = (counts.astype(np.int64) << np.arange(40)[:, None]).sum(axis=0)
    expected = ((x[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).sum(axis=0)
    assert_array_equal(got, expected)


def test_pack_unpack_round_trip_and_validation():
    rng = np.random.default_rng(SEED)
    configs = np.stack([random_lattice(6, rng) for _ in range(64)])
    assert_array_equal(unpack_replicas(pack_replicas(configs)), configs)
    assert_array_equal(unpack_replicas(pack_replicas(configs[:5]), 5), configs[:5])
    with pytest.raises(ValueError, match="even L"):
        multispin_sweeps(random_replicas(5, rng), 0.4, 1, make_rng_state(np.random.SeedSequence(1)))
    with pytest.raises(ValueError, match="words"):
        multispin_sweeps(np.zeros((4, 4), dtype=np.int64), 0.4, 1,
                         make_rng_state(np.random.SeedSequence(1)))
    with pytest.raises(ValueError, match="beta"):
        multispin_sweeps(random_replicas(4, rng), -1.0, 1, make_rng_state(np.random.SeedSequence(1)))


# --- statistics --------------------------------------------------------------------------------

def _enumerate4():
    index = np.arange(2**16, dtype=np.int64)
    s = (2 * ((index[:, None] >> np.arange(16)) & 1) - 1).reshape(-1, 4, 4)
    return _energies(s), s.sum(axis=(1, 2))


E4, M4 = _enumerate4()


def _exact4(T):
    p = np.exp(-(E4 - E4.min()) / T)
    p /= p.sum()
    N, beta = 16, 1 / T
    e, m = E4 / N, M4 / N
    avg = lambda x: float(np.dot(p, x))
    levels, inverse = np.unique(E4, return_inverse=True)
    exact = {"e": avg(e), "m_abs": avg(np.abs(m)),
             "C": beta**2 * N * (avg(e**2) - avg(e) ** 2),
             "chi": beta * N * (avg(m**2) - avg(np.abs(m)) ** 2),
             "binder": 1 - avg(m**4) / (3 * avg(m**2) ** 2)}
    return exact, levels, np.bincount(inverse, weights=p)


@pytest.fixture(scope="module")
def runs_L4():
    # 64 chains x 300 stores, thin 10 >> tau ~ 1 sweep: 19,200 nearly independent samples
    return {T: simulate(4, T, "multispin", 500, 64 * 300, 10, np.random.SeedSequence(SEED, spawn_key=(j,)))
            for j, T in enumerate((2.0, 3.0))}


def _chi2_pvalue(energies, levels, prob):
    observed = np.array([np.count_nonzero(energies == E) for E in levels], dtype=float)
    assert observed.sum() == energies.size
    expected = prob * energies.size
    keep = expected >= 5  # merge the rare high-energy levels into one bin
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    return chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


@pytest.mark.parametrize("T", [2.0, 3.0])
def test_multispin_energy_histogram_L4_matches_enumeration(runs_L4, T):
    run = runs_L4[T]
    energies = _energies(run.samples.reshape(-1, 4, 4))
    _, levels, prob = _exact4(T)
    assert _chi2_pvalue(energies, levels, prob) > 1e-3
    _, levels_hot, prob_hot = _exact4(1.05 * T)
    assert _chi2_pvalue(energies, levels_hot, prob_hot) < 1e-6  # the test has power


@pytest.mark.parametrize("T", [2.0, 3.0])
def test_multispin_thermodynamics_L4_match_enumeration(runs_L4, T):
    run = runs_L4[T]
    measured = thermodynamics(run.e_series, run.m_series, 4, T)
    exact, _, _ = _exact4(T)
    for key, value in exact.items():
        z = (measured[key] - value) / measured[key + "_err"]
        assert abs(z) < 4, (key, measured[key], value, measured[key + "_err"])


@pytest.mark.parametrize("T", [2.0, 2.269185, 3.0])
def test_multispin_energy_and_heat_capacity_L16_match_kaufman(T):
    from workers.exact import kaufman
    exact = kaufman(16, T)
    run = simulate(16, T, "multispin", 2000, 64, 8000, np.random.SeedSequence(SEED + 1, spawn_key=(int(100 * T),)))
    measured = thermodynamics(run.e_series, run.m_series, 16, T)
    assert abs(measured["e"] - exact["u"]) < 4 * measured["e_err"], (measured["e"], exact["u"])
    assert abs(measured["C"] - exact["c"]) < 4 * measured["C_err"], (measured["C"], exact["c"])
    assert measured["e_err"] < 1e-3 and measured["C_err"] < 0.03 * exact["c"]


def test_chain_errors_agree_with_autocorrelation_errors():
    # the between-chain error of <e> and the tau_int error of the pooled series estimate the
    # same thing; their ratio has a relative spread of about 1/sqrt(2 * 63) = 9%
    run = simulate(8, 2.5, "multispin", 1000, 64, 2000, np.random.SeedSequence(SEED + 2))
    e = run.e_series
    between = thermodynamics(e, run.m_series, 8, 2.5)["e_err"]
    tau = chain_integrated_time(e)
    pooled = np.sqrt(2 * tau * e.var(ddof=1) / e.size)
    assert abs(between / pooled - 1) < 4 * 0.09


def test_pooled_chain_tau_of_ar1_chains():
    # AR(1): tau_int = (1 + phi) / (2 (1 - phi)) = 9.5; 64 chains only 30 tau long each
    rng = np.random.default_rng(SEED)
    phi, n, K = 0.9, 285, 64
    x = np.empty((n, K))
    x[0] = rng.normal(size=K) / np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.normal(size=K)
    tau = chain_integrated_time(x)
    error = 9.5 * np.sqrt(2 * (2 * 5 * 9.5 + 1) / (n * K))  # Madras-Sokal, window ~ 5 tau
    assert abs(tau - 9.5) < 4 * error, tau
    assert chain_integrated_time(np.ones((10, 3))) == 0.5


# --- behaviour ---------------------------------------------------------------------------------

def test_simulate_multispin_layout_and_determinism():
    L, thin, n_samples = 6, 3, 150  # 3 stores: 64 + 64 + 22 samples
    seq = np.random.SeedSequence(SEED, spawn_key=(9,))
    out = simulate(L, 2.4, "multispin", 20, n_samples, thin, seq)
    N = L * L
    assert out.samples.shape == (n_samples, N) and out.samples.dtype == np.int8
    assert out.e_series.shape == out.m_series.shape == (3 * thin, 64)
    assert out.n_chains == 64 and out.algorithm_used == "multispin"
    assert out.attempted_flips == 3 * thin * N * 64 >= out.flipped_spins > 0
    # sample j is chain j % 64 at its (j // 64)-th store, taken after sweep (j // 64 + 1) thin
    j = np.arange(n_samples)
    step = (j // 64 + 1) * thin - 1
    configs = out.samples.reshape(n_samples, L, L)
    assert_array_equal(_energies(configs), np.rint(out.e_series[step, j % 64] * N))
    assert_array_equal(configs.sum(axis=(1, 2)), np.rint(out.m_series[step, j % 64] * N))
    again = simulate(L, 2.4, "multispin", 20, n_samples, thin, seq)
    for key in ("samples", "e_series", "m_series"):
        assert_array_equal(getattr(out, key), getattr(again, key))
    other = simulate(L, 2.4, "multispin", 20, n_samples, thin, np.random.SeedSequence(SEED))
    assert not np.array_equal(out.samples, other.samples)
    few = simulate(L, 2.4, "multispin", 5, 10, 2, seq)
    assert few.samples.shape == (10, N) and few.e_series.shape == (2, 64)
    with pytest.raises(ValueError, match="even L"):
        simulate(5, 2.4, "multispin", 5, 10, 2, seq)


def test_simulate_multispin_auto_thin():
    out = simulate(8, 2.269185, "multispin", 200, 128, "auto", np.random.SeedSequence(4))
    tau = max(chain_integrated_time(out.e_series), chain_integrated_time(np.abs(out.m_series)))
    assert out.thin_used >= 2 and out.pilot_sweeps >= 1000
    assert out.e_series.shape == (2 * out.thin_used, 64)
    assert out.thin_used > tau


def test_thermodynamics_of_chains():
    run = simulate(6, 2.5, "multispin", 100, 64, 200, np.random.SeedSequence(SEED + 3))
    e, m = run.e_series, run.m_series
    both = thermodynamics(e, m, 6, 2.5)
    assert both["e"] == pytest.approx(e.mean()) and both["m2"] == pytest.approx((m**2).mean())
    assert both["e_err"] == pytest.approx(e.mean(axis=0).std(ddof=1) / 8)
    # one column is a single chain: exactly the 1-d result
    assert thermodynamics(e[:, :1], m[:, :1], 6, 2.5) == thermodynamics(e[:, 0], m[:, 0], 6, 2.5)
    with pytest.raises(ValueError, match="equal"):
        thermodynamics(e, m[:, :3], 6, 2.5)


def test_auto_rule_is_deterministic_and_records_its_choice():
    for L in (4, 8, 16, 32, 64, 128, 256):
        for T in (1.0, 1.5, 2.0, TC, 2.5, 3.0, 4.0):
            for n in (None, 10, 64, 10_000):
                choice = choose_algorithm(L, T, n)
                assert choice == choose_algorithm(L, T, n)
                assert choice in ("metropolis", "wolff", "multispin")
                if n is None or n < 64:
                    assert choice != "multispin"
    assert choose_algorithm(5, 4.0, 10_000) == "wolff"  # odd L: only Wolff runs
    out = simulate(8, 3.5, "auto", 10, 128, 1, np.random.SeedSequence(1))
    assert out.algorithm_used == choose_algorithm(8, 3.5, 128)
