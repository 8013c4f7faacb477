"""Autocorrelation times and error bars on series with known answers (AR(1), i.i.d.)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.signal import lfilter

from contract.estimators import (AutocorrError, auto_window, autocorr_function, integrated_time,
                              integrated_time_error)
from workers.ising.observables import jackknife_blocks, n_jackknife_blocks, thermodynamics

SEED = 31415


def ar1(phi, n, rng, burn=2000):
    """x_t = phi x_{t-1} + eps_t, unit-variance innovations; stationary variance 1/(1-phi^2).

    tau_int = 1/2 + sum_{t>=1} phi^t = (1 + phi) / (2 (1 - phi)).
    """
    x = lfilter([1.0], [1.0, -phi], rng.standard_normal(n + burn))
    return x[burn:]


def test_autocorr_function_matches_direct_sum():
    x = np.random.default_rng(SEED).standard_normal(157).cumsum()
    d = x - x.mean()
    direct = np.array([np.dot(d[: d.size - t], d[t:]) for t in range(d.size)])
    assert_allclose(autocorr_function(x), direct / direct[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_integrated_time_of_ar1(phi):
    n = 2**18
    x = ar1(phi, n, np.random.default_rng([SEED, int(phi * 10)]))
    tau, window = integrated_time(x, return_window=True)
    exact = (1 + phi) / (2 * (1 - phi))
    sigma = integrated_time_error(tau, window, n)
    assert abs(tau - exact) < 4 * sigma, (tau, exact, sigma)
    assert sigma < 0.05 * exact  # precise enough to tell tau_int from emcee's 2 tau_int - 0.5


def test_window_is_smallest_lag_satisfying_sokal_condition():
    x = ar1(0.8, 20_000, np.random.default_rng(SEED))
    taus = np.cumsum(autocorr_function(x)) - 0.5
    M = auto_window(taus, 5.0)
    assert M >= 5.0 * taus[M]
    assert np.all(np.arange(M) < 5.0 * taus[:M])
    assert integrated_time(x, return_window=True) == (taus[M], M)
    assert auto_window(np.full(10, 100.0), 5.0) == 9  # no lag qualifies: the last one


def test_constant_series_has_tau_one_half():
    for x in (np.full(1000, 0.1), np.ones(1), np.full(64, -1.75)):
        assert integrated_time(x, quiet=True) == 0.5
        rho = autocorr_function(x)
        assert rho[0] == 1 and np.all(rho[1:] == 0)


def test_short_chain_raises_with_partial_estimate():
    x = ar1(0.99, 2000, np.random.default_rng(SEED))
    with pytest.raises(AutocorrError) as info:
        integrated_time(x)
    assert info.value.tau > 2000 / 50
    assert integrated_time(x, quiet=True) == info.value.tau


def test_bad_series_rejected():
    for bad in (np.zeros((3, 3)), np.array([]), np.array([1.0, np.nan])):
        with pytest.raises(ValueError):
            integrated_time(bad)


# --- observables -------------------------------------------------------------------------------

def test_jackknife_of_a_mean_is_the_block_error():
    x = np.random.default_rng(SEED).standard_normal(1000)
    value, error = jackknife_blocks(x[:, None], lambda a: a[0], 20)
    blocks = x.reshape(20, 50).mean(axis=1)
    assert_allclose(value, x.mean(), rtol=1e-12)
    assert_allclose(error, blocks.std(ddof=1) / np.sqrt(20), rtol=1e-12)


def test_number_of_blocks():
    assert n_jackknife_blocks(100_000, 0.5) == 50
    assert n_jackknife_blocks(100_000, 200.0) == 25
    assert n_jackknife_blocks(1000, 50.0) == 20
    assert n_jackknife_blocks(7, 0.5) == 7


def test_errors_of_iid_series_agree_with_naive_formula():
    rng = np.random.default_rng(SEED)
    n = 20_000
    e = -1.0 + 0.1 * rng.standard_normal(n)
    m = 0.5 + 0.2 * rng.standard_normal(n)
    out = thermodynamics(e, m, L=8, T=2.5)
    # tau_int(i.i.d.) = 1/2 within Sokal's error 0.5 sqrt(2 (2M+1)/n), M = 3
    tau_sigma = 0.5 * np.sqrt(2 * 7 / n)
    assert abs(out["tau_int_e"] - 0.5) < 4 * tau_sigma
    assert abs(out["tau_int_m"] - 0.5) < 4 * tau_sigma
    # err = sqrt(2 tau var / n) scales as sqrt(tau): relative error tau_sigma / (2 * 0.5)
    assert abs(out["e_err"] / (e.std(ddof=1) / np.sqrt(n)) - 1) < 4 * tau_sigma
    assert abs(out["m_abs_err"] / (np.abs(m).std(ddof=1) / np.sqrt(n)) - 1) < 4 * tau_sigma
    assert out["e"] == pytest.approx(e.mean(), rel=1e-12)
    assert out["m2"] == pytest.approx(np.mean(m**2), rel=1e-12)
    assert out["m4"] == pytest.approx(np.mean(m**4), rel=1e-12)


def test_error_of_mean_of_correlated_series():
    phi, n = 0.9, 2**17
    x = ar1(phi, n, np.random.default_rng(SEED + 1))
    out = thermodynamics(-1.0 + 0.01 * x, 0.01 * x, L=4, T=2.0)
    tau = (1 + phi) / (2 * (1 - phi))
    true_err = 0.01 * np.sqrt(2 * tau / (1 - phi**2) / n)
    # relative error of err: half that of tau (Sokal, M ~ 5 tau) and half that of the variance
    # of an AR(1) series, sqrt(2 (1 + phi^2) / (1 - phi^2) / n)
    rel = 0.5 * np.hypot(np.sqrt(2 * (2 * 5 * tau + 1) / n), np.sqrt(2 * (1 + phi**2) / (1 - phi**2) / n))
    assert abs(out["e_err"] / true_err - 1) < 4 * rel


def test_jackknife_errors_are_calibrated_on_iid_gaussians():
    """z = (estimate - truth) / error over many replicates has <z^2> ~ 1 for C, chi and binder.

    For i.i.d. Gaussian e ~ N(-1, s_e^2), m ~ N(0, s_m^2): C = beta^2 N s_e^2,
    chi = beta N s_m^2 (1 - 2/pi), U_4 = 1 - 3 s_m^4 / (3 s_m^4) = 0. With K = 50 blocks z is
    close to Student t with 49 dof: E z^2 = 49/47, Var z^2 = 3*49^2/(47*45) - (49/47)^2 = 2.32.
    """
    rng = np.random.default_rng(SEED)
    L, T, n, reps = 4, 2.5, 4000, 300
    N, beta, s_e, s_m = L * L, 1 / T, 0.2, 0.3
    truth = {"C": beta**2 * N * s_e**2, "chi": beta * N * s_m**2 * (1 - 2 / np.pi), "binder": 0.0}
    z2 = {key: [] for key in truth}
    for _ in range(reps):
        out = thermodynamics(-1 + s_e * rng.standard_normal(n), s_m * rng.standard_normal(n), L, T)
        for key in truth:
            z2[key].append(((out[key] - truth[key]) / out[key + "_err"]) ** 2)
    expected, sigma = 49 / 47, np.sqrt(2.32 / reps)
    for key in truth:
        assert abs(np.mean(z2[key]) - expected) < 4 * sigma, (key, np.mean(z2[key]))


def test_constant_series_gives_zero_errors():
    out = thermodynamics(np.full(500, -2.0), np.ones(500), L=4, T=1.0)
    assert out["tau_int_e"] == 0.5 and out["e_err"] == 0 and out["m_abs_err"] == 0
    assert out["C"] == pytest.approx(0, abs=1e-12) and out["C_err"] == pytest.approx(0, abs=1e-12)
    assert out["binder"] == pytest.approx(2 / 3)
