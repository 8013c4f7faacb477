"""Exact Ising references: enumeration, Kaufman's torus and Onsager's plane must agree.

Exact tests compare two independent computations (2^N enumeration vs Kaufman's product
formula; Kaufman at large L vs Onsager's closed forms); behavioural tests check limits,
known numbers and argument validation. Nothing here is random.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from workers.exact import (
    TC,
    brute_force,
    energy_histogram,
    exact_energy_distribution,
    kaufman,
    kaufman_c_peak,
    onsager,
    spontaneous_magnetization,
)

KC = 1.0 / TC
CATALAN = 0.915965594177219015054603514932384110774
A0 = 8 * KC**2 / np.pi  # c_max(L) ~ A0 ln L (Ferdinand & Fisher 1969)
T_BRIEF = np.array([0.5, 1.0, 2.0, 2.269185, TC, 3.0, 5.0, 50.0])


def _five_point(fun, x, h):
    """d fun / dx by the O(h^4) central difference."""
    return (-fun(x + 2 * h) + 8 * fun(x + h) - 8 * fun(x - h) + fun(x - 2 * h)) / (12 * h)


# ----------------------------------------------------------------- enumeration == Kaufman


@pytest.mark.parametrize("L", [2, 3, 4])
def test_kaufman_matches_enumeration(L):
    exact, formula = brute_force(L, T_BRIEF), kaufman(L, T_BRIEF)
    for key in ("lnZ", "f", "u", "c"):
        assert_allclose(formula[key], exact[key], rtol=1e-10, atol=0, err_msg=key)


def test_kaufman_matches_enumeration_at_every_temperature_of_a_grid():
    temps = np.linspace(0.6, 8.0, 75)
    exact, formula = brute_force(4, temps), kaufman(4, temps)
    assert_allclose(formula["u"], exact["u"], rtol=1e-10, atol=0)
    assert_allclose(formula["c"], exact["c"], rtol=1e-10, atol=0)


# ----------------------------------------------------------------- enumeration on its own


@pytest.mark.parametrize("L", [2, 3, 4])
def test_enumeration_infinite_temperature_limit(L):
    n = L * L
    r = brute_force(L, 1e12)
    assert r["lnZ"] == pytest.approx(n * np.log(2), rel=1e-14)
    assert abs(r["u"]) < 1e-10
    assert r["m2"] == pytest.approx(1 / n, rel=1e-9)  # independent spins: <M^2> = N
    assert r["m4"] == pytest.approx((3 * n**2 - 2 * n) / n**4, rel=1e-9)


@pytest.mark.parametrize("L", [2, 3, 4])
def test_enumeration_zero_temperature_limit(L):
    n, T = L * L, 0.02
    r = brute_force(L, T)
    assert r["u"] == -2.0
    assert r["lnZ"] == pytest.approx(np.log(2) + 2 * n / T, rel=1e-14)  # two ground states
    assert r["m_abs"] == pytest.approx(1.0, abs=1e-12)
    assert r["m4"] == pytest.approx(1.0, abs=1e-12)
    assert 0 <= r["c"] < 1e-100


def test_energy_histogram_L4_is_the_published_density_of_states():
    energies, counts = energy_histogram(4)
    half = [2, 32, 64, 424, 1728, 6688, 13568]  # E = -32, -24, -20, ..., -4 (Beale 1996)
    assert_array_equal(energies, [-32, -24, -20, -16, -12, -8, -4, 0, 4, 8, 12, 16, 20, 24, 32])
    assert_array_equal(counts, half + [20524] + half[::-1])


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_energy_histogram_counts_and_symmetry(L):
    n = L * L
    energies, counts = energy_histogram(L)
    assert counts.sum() == 2**n
    assert energies[0] == -2 * n and counts[0] == 2  # all up, all down
    assert np.all((energies - energies[0]) % 4 == 0)  # every site has even degree 4
    mirrored = dict(zip(-energies, counts))
    symmetric = all(mirrored.get(e) == g for e, g in zip(energies, counts))
    # Flipping one sublattice maps E -> -E only on a bipartite torus (even L); odd L frustrates
    # (and L = 1 has only self-bonds: E = -2 always).
    assert symmetric == (L % 2 == 0)


@pytest.mark.parametrize("T", [0.7, TC, 4.0])
def test_exact_energy_distribution(T):
    energies, probs = exact_energy_distribution(4, T)
    _, counts = energy_histogram(4)
    assert probs.sum() == pytest.approx(1.0, rel=1e-14)
    assert (probs @ energies) / 16 == pytest.approx(brute_force(4, T)["u"], rel=1e-13)
    ratio = probs[1:] / probs[0] / (counts[1:] / counts[0])
    assert_allclose(ratio, np.exp(-(energies[1:] - energies[0]) / T), rtol=1e-12)


# ----------------------------------------------------------------- Kaufman on its own


def test_kaufman_vectorised_equals_scalar_calls_and_keeps_shape():
    temps = np.array([[0.8, 1.5, 2.2], [TC, 2.4, 6.0]])
    table = kaufman(32, temps)
    for key, values in table.items():
        assert values.shape == temps.shape
        scalars = np.array([[kaufman(32, float(t))[key] for t in row] for row in temps])
        assert_allclose(values, scalars, rtol=1e-14, atol=0, err_msg=key)
    assert isinstance(kaufman(32, 2.0)["c"], float)


@pytest.mark.parametrize("L", [8, 256])
def test_kaufman_derivatives_are_consistent_with_lnz(L):
    """u = -(1/N) dlnZ/dbeta and c = -beta^2 du/dbeta, by finite differences (error ~1e-11)."""
    temps = np.array([1.0, 2.2, TC, 2.3, 4.0])
    beta, h, r = 1 / temps, 1e-5, kaufman(L, temps)
    du_dbeta = _five_point(lambda b: kaufman(L, 1 / b)["u"], beta, h)
    dlnz_dbeta = _five_point(lambda b: kaufman(L, 1 / b)["lnZ"] / L**2, beta, h)
    assert_allclose(-dlnz_dbeta, r["u"], rtol=1e-8)
    assert_allclose(-beta**2 * du_dbeta, r["c"], rtol=1e-8)


@pytest.mark.parametrize("T", [1.5, 3.5])
def test_kaufman_large_lattice_is_onsager(T):
    L, n = 256, 256**2
    k, o = kaufman(L, T), onsager(T)
    # Finite-size corrections are O(exp(-L/xi)) except the ln 2 of the two ordered states.
    degeneracy = np.log(2) if T < TC else 0.0
    assert k["lnZ"] == pytest.approx(-n * o["f"] / T + degeneracy, rel=1e-12)
    assert k["f"] == pytest.approx(o["f"], rel=1e-5)
    assert k["u"] == pytest.approx(o["u"], rel=1e-12)
    assert k["c"] == pytest.approx(o["c"], rel=1e-12)


@pytest.mark.parametrize("T", [2.2, 2.35])
def test_kaufman_converges_to_onsager_near_tc(T):
    o = onsager(T)
    sizes = [32, 64, 128, 256, 512]
    u_err = [abs(kaufman(L, T)["u"] / o["u"] - 1) for L in sizes]
    c_err = [abs(kaufman(L, T)["c"] / o["c"] - 1) for L in sizes]
    assert all(np.diff(u_err[:-1]) < 0) and all(np.diff(c_err[:-1]) < 0)
    assert u_err[-1] < 1e-12 and c_err[-1] < 1e-11


def test_kaufman_c_peak_agrees_with_a_fine_grid():
    t_peak, c_max = kaufman_c_peak(16)
    grid = np.arange(2.29, 2.35, 1e-5)
    c = kaufman(16, grid)["c"]
    assert abs(t_peak - grid[np.argmax(c)]) <= 1e-5
    assert 0 <= c_max - c.max() < 1e-8
    assert kaufman(16, t_peak)["c"] == c_max


def test_kaufman_c_peak_finite_size_scaling():
    sizes = [16, 32, 64, 128, 256]
    peaks = np.array([kaufman_c_peak(L) for L in sizes])
    shift = peaks[:, 0] - TC
    assert np.all(shift > 0)
    assert_allclose(shift[1:] / shift[:-1], 0.5, atol=0.02)  # T_peak - TC ~ 1/L
    # c_max grows like A0 ln L: doubling L adds A0 ln 2, with O(ln L / L) corrections.
    gap = np.abs(np.diff(peaks[:, 1]) - A0 * np.log(2))
    assert np.all(np.diff(gap) < 0) and gap[-1] < 2e-3


# ----------------------------------------------------------------- Onsager


def test_onsager_at_tc():
    r = onsager(TC)
    assert r["u"] == pytest.approx(-np.sqrt(2), rel=1e-14)
    assert -r["f"] / TC == pytest.approx(np.log(2) / 2 + 2 * CATALAN / np.pi, rel=1e-13)
    assert r["c"] == np.inf
    assert TC == pytest.approx(2.269185314213022, rel=1e-15)


@pytest.mark.parametrize("T", [1.0, 1.5, 2.0, 2.6, 3.5])
def test_onsager_thermodynamic_consistency(T):
    """u = d(beta f)/d beta and c = -beta^2 du/d beta, finite differences with error ~1e-10."""
    beta, h, r = 1 / T, 5e-4, onsager(T)
    du_dbeta = _five_point(lambda b: onsager(1 / b)["u"], beta, h)
    dbetaf_dbeta = _five_point(lambda b: b * onsager(1 / b)["f"], beta, h)
    assert dbetaf_dbeta == pytest.approx(r["u"], rel=1e-8)
    assert -beta**2 * du_dbeta == pytest.approx(r["c"], rel=1e-8)


def test_onsager_vectorised_equals_scalar():
    temps = np.array([1.2, TC, 3.0])
    table = onsager(temps)
    for key, values in table.items():
        assert_allclose(values, [onsager(float(t))[key] for t in temps], rtol=1e-14)


def test_spontaneous_magnetization():
    # Low-temperature series in x = exp(-4/T) (Domb; Yang 1952): next term is 3472 x^7.
    x = np.exp(-4.0)
    series = 1 - 2 * x**2 - 8 * x**3 - 34 * x**4 - 152 * x**5 - 714 * x**6
    assert spontaneous_magnetization(1.0) == pytest.approx(series, abs=1e-8)
    assert_array_equal(spontaneous_magnetization([TC, 2.5, 10.0]), 0.0)
    below = spontaneous_magnetization(TC * (1 - np.array([1e-2, 1e-4, 1e-8])))
    assert np.all(np.diff(below) < 0) and below[-1] < 0.2  # vanishes like (TC - T)^(1/8)
    assert spontaneous_magnetization(0.3) == pytest.approx(1.0, abs=1e-11)


# ----------------------------------------------------------------- argument validation


@pytest.mark.parametrize(
    "call",
    [
        lambda: brute_force(5, 1.0),
        lambda: brute_force(4, 0.0),
        lambda: brute_force(2.0, 1.0),
        lambda: energy_histogram(0),
        lambda: exact_energy_distribution(4, [1.0, 2.0]),
        lambda: kaufman(1, 2.0),
        lambda: kaufman(8, -1.0),
        lambda: kaufman(8, 0.001),
        lambda: kaufman(8, [2.0, np.nan]),
        lambda: kaufman(8, []),
        lambda: onsager(np.inf),
        lambda: onsager(0.005),
        lambda: spontaneous_magnetization(-1.0),
        lambda: kaufman_c_peak(True),
    ],
)
def test_invalid_arguments_raise(call):
    with pytest.raises(ValueError):
        call()
