"""Statistical tests of the samplers against exact results, and behaviour of ``simulate``.

L = 4: the energy histogram of stored configurations against brute-force enumeration of the
2^16 states (chi-square), and e, |m|, C, chi, U_4 against the same enumeration (z-scores with
tau_int / jackknife errors). L = 16: e and C against Kaufman's exact finite-torus solution.
Fixed seeds; every check is at 4 error bars.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy.stats import chisquare

from contract.estimators import integrated_time
from contract.sampler_costs import TC, choose_algorithm
from workers.ising.simulate import simulate
from workers.ising.observables import thermodynamics

SEED = 1234
ALGORITHMS = ("metropolis", "wolff")


def _enumerate(L):
    """Energies and magnetizations of all 2^(L*L) configurations of the periodic lattice."""
    N = L * L
    index = np.arange(2**N, dtype=np.int64)
    s = (2 * ((index[:, None] >> np.arange(N)) & 1) - 1).reshape(-1, L, L)
    E = -(s * (np.roll(s, -1, axis=1) + np.roll(s, -1, axis=2))).sum(axis=(1, 2))
    return E, s.sum(axis=(1, 2))


E4, M4 = _enumerate(4)


def _boltzmann(T):
    w = np.exp(-(E4 - E4.min()) / T)
    return w / w.sum()


def _exact_distribution(T):
    levels, inverse = np.unique(E4, return_inverse=True)
    return levels, np.bincount(inverse, weights=_boltzmann(T))


def _exact_thermodynamics(T):
    p, N, beta = _boltzmann(T), 16, 1 / T
    e, m = E4 / N, M4 / N
    avg = lambda x: float(np.dot(p, x))
    return {"e": avg(e), "m_abs": avg(np.abs(m)),
            "C": beta**2 * N * (avg(e**2) - avg(e) ** 2),
            "chi": beta * N * (avg(m**2) - avg(np.abs(m)) ** 2),
            "binder": 1 - avg(m**4) / (3 * avg(m**2) ** 2)}


def _chi_square_pvalue(energies, T):
    """Chi-square of a histogram of total energies against the exact L = 4 distribution.

    Bins are merged from the low-energy end until each expected count is >= 5.
    """
    levels, prob = _exact_distribution(T)
    observed = np.array([np.count_nonzero(energies == E) for E in levels], dtype=float)
    assert observed.sum() == energies.size  # no impossible energy was sampled
    expected = prob * energies.size
    obs_bins, exp_bins, o, x = [], [], 0.0, 0.0
    for ob, ex in zip(observed, expected):
        o, x = o + ob, x + ex
        if x >= 5:
            obs_bins.append(o)
            exp_bins.append(x)
            o, x = 0.0, 0.0
    obs_bins[-1] += o
    exp_bins[-1] += x
    exp_bins = np.array(exp_bins) * (np.sum(obs_bins) / np.sum(exp_bins))
    return chisquare(obs_bins, exp_bins).pvalue


@pytest.fixture(scope="module")
def runs_L4():
    """thin = 10 sweeps >> tau_int ~ 1 sweep at L = 4, so stored samples are nearly independent."""
    return {(alg, T): simulate(4, T, alg, burn_in=1000, n_samples=40_000, thin=10,
                               seed_seq=np.random.SeedSequence(SEED, spawn_key=(i, j)))
            for i, alg in enumerate(ALGORITHMS) for j, T in enumerate((2.0, 3.0))}


def _stored_energies(samples):
    s = samples.reshape(-1, 4, 4).astype(np.int64)
    return -(s * (np.roll(s, -1, axis=1) + np.roll(s, -1, axis=2))).sum(axis=(1, 2))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("T", [2.0, 3.0])
def test_energy_histogram_L4_matches_enumeration(runs_L4, algorithm, T):
    run = runs_L4[algorithm, T]
    energies = _stored_energies(run.samples)
    # the chi-square assumes independent samples: check that thinning achieved it
    assert integrated_time(energies) < 0.5 + 4 * 0.5 * np.sqrt(2 * 7 / energies.size)
    assert _chi_square_pvalue(energies, T) > 1e-3
    # the test has power: the same histogram is rejected against a 5% different temperature
    assert _chi_square_pvalue(energies, 1.05 * T) < 1e-6


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("T", [2.0, 3.0])
def test_thermodynamics_L4_match_enumeration(runs_L4, algorithm, T):
    run = runs_L4[algorithm, T]
    measured = thermodynamics(run.e_series, run.m_series, 4, T)
    for key, value in _exact_thermodynamics(T).items():
        z = (measured[key] - value) / measured[key + "_err"]
        assert abs(z) < 4, (key, measured[key], value, measured[key + "_err"])


@pytest.fixture(scope="module")
def runs_L16():
    # samples are not needed here: few stored configurations, many measurements
    return {(alg, T): simulate(16, T, alg, burn_in=2000, n_samples=50,
                               thin=4000 if alg == "metropolis" else 1600,
                               seed_seq=np.random.SeedSequence(SEED + 1, spawn_key=(i, j)))
            for i, alg in enumerate(ALGORITHMS) for j, T in enumerate((2.0, 2.269185, 3.0))}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("T", [2.0, 2.269185, 3.0])
def test_energy_and_heat_capacity_L16_match_kaufman(runs_L16, algorithm, T):
    from workers.exact import kaufman
    exact = kaufman(16, T)
    run = runs_L16[algorithm, T]
    measured = thermodynamics(run.e_series, run.m_series, 16, T)
    assert abs(measured["e"] - exact["u"]) < 4 * measured["e_err"], (measured["e"], exact["u"])
    assert abs(measured["C"] - exact["c"]) < 4 * measured["C_err"], (measured["C"], exact["c"])
    # errors small enough that the comparison means something
    assert measured["e_err"] < 2e-3 and measured["C_err"] < 0.05 * exact["c"]


@pytest.mark.parametrize("T", [2.0, 2.269185, 3.0])
def test_metropolis_and_wolff_agree_on_magnetization_L16(runs_L16, T):
    a, b = (thermodynamics(runs_L16[alg, T].e_series, runs_L16[alg, T].m_series, 16, T)
            for alg in ALGORITHMS)
    for key in ("m_abs", "chi", "binder"):
        z = (a[key] - b[key]) / np.hypot(a[key + "_err"], b[key + "_err"])
        assert abs(z) < 4, (key, a[key], b[key])


# --- behaviour of simulate ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_simulate_is_deterministic(algorithm):
    seq = np.random.SeedSequence(SEED, spawn_key=(7,))
    a = simulate(8, 2.3, algorithm, 50, 20, 3, seq)
    b = simulate(8, 2.3, algorithm, 50, 20, 3, seq)
    c = simulate(8, 2.3, algorithm, 50, 20, 3, np.random.SeedSequence(SEED, spawn_key=(8,)))
    for key in ("samples", "e_series", "m_series"):
        assert_array_equal(getattr(a, key), getattr(b, key))
        assert not np.array_equal(getattr(a, key), getattr(c, key))
    for key in ("acceptance", "attempted_flips", "flipped_spins", "n_clusters", "thin_used"):
        assert getattr(a, key) == getattr(b, key)
    assert seq.n_children_spawned == 0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_simulate_outputs_are_consistent(algorithm):
    L, n_samples, thin = 6, 15, 4
    out = simulate(L, 2.5, algorithm, 20, n_samples, thin, np.random.SeedSequence(3))
    N = L * L
    assert out.samples.shape == (n_samples, N) and out.samples.dtype == np.int8
    assert out.e_series.shape == out.m_series.shape == (n_samples * thin,)
    assert out.algorithm_used == algorithm and out.thin_used == thin
    # stored configuration j is the one measured at step (j + 1) * thin - 1
    stored = out.samples.reshape(n_samples, L, L).astype(np.int64)
    E = -(stored * (np.roll(stored, -1, 1) + np.roll(stored, -1, 2))).sum(axis=(1, 2))
    assert_array_equal(E, np.rint(out.e_series[thin - 1::thin] * N))
    assert_array_equal(stored.sum(axis=(1, 2)), np.rint(out.m_series[thin - 1::thin] * N))
    assert 0 < out.acceptance <= 1 and out.flips_per_ns > 0 and out.wall_s > 0
    if algorithm == "metropolis":
        assert out.attempted_flips == n_samples * thin * N >= out.flipped_spins
    else:
        assert out.flipped_spins == out.attempted_flips >= out.n_clusters > 0


def test_simulate_auto_thin_and_auto_algorithm():
    out = simulate(8, 2.269185, "metropolis", 100, 10, "auto", np.random.SeedSequence(4))
    tau = max(integrated_time(out.e_series, quiet=True),
              integrated_time(np.abs(out.m_series), quiet=True))
    assert out.thin_used >= 2 and out.pilot_sweeps >= 1000
    assert out.e_series.size == 10 * out.thin_used
    assert out.thin_used > tau  # the pilot is not wildly off the measured tau
    assert choose_algorithm(16, TC) == "wolff" and choose_algorithm(16, 1.0) == "wolff"
    assert choose_algorithm(16, TC + 0.6) == "metropolis" and choose_algorithm(5, 4.0) == "wolff"
    odd = simulate(5, 4.0, "auto", 10, 5, 1, np.random.SeedSequence(5))
    assert odd.algorithm_used == "wolff"


@pytest.mark.parametrize("kwargs, match", [
    ({"L": 5, "algorithm": "metropolis"}, "even L"),
    ({"algorithm": "heatbath"}, "algorithm"),
    ({"T": 0.0}, "T must be"),
    ({"thin": 0}, "thin"),
    ({"thin": "often"}, "thin"),
    ({"n_samples": 0}, "n_samples"),
    ({"burn_in": -1}, "burn_in"),
])
def test_simulate_rejects_bad_arguments(kwargs, match):
    args = dict(L=4, T=2.0, algorithm="wolff", burn_in=1, n_samples=1, thin=1,
                seed_seq=np.random.SeedSequence(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate(**args)
