"""Wishart spectra: small side vs full Sigma, Marchenko-Pastur law at initialisation, Theorem 1."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

from workers.measures.spectra import (
    marchenko_pastur_cdf,
    marchenko_pastur_edges,
    marchenko_pastur_pdf,
    marchenko_pastur_quantile,
    fit_bulk_sigma,
    spectrum_summary,
    wishart_eigenvalues,
)

N_V, N_H, SIGMA = 256, 64, 0.1  # a 16x16 lattice with N/4 hidden units


@pytest.mark.parametrize("shape", [(30, 7), (7, 30), (12, 12), (20, 1)])
def test_small_side_equals_nonzero_eigenvalues_of_full_sigma(shape):
    rng = np.random.default_rng(sum(shape))
    W = rng.normal(0.0, 0.5, shape)
    eigs = wishart_eigenvalues(W)
    q = min(shape)
    assert eigs.shape == (q,) and eigs.dtype == np.float64
    assert np.all(np.diff(eigs) <= 0)
    full = np.linalg.eigvalsh(W @ W.T)[::-1]
    assert_allclose(eigs, full[:q], rtol=0, atol=1e-12 * full[0])
    # The rest of the full spectrum is the exact zero block of Theorem 1's rank bound.
    assert_allclose(full[q:], 0.0, atol=1e-12 * full[0])
    assert_allclose(eigs, np.linalg.svd(W, compute_uv=False) ** 2, rtol=1e-10)


def test_mp_edges_values():
    lo, up = marchenko_pastur_edges(0.5, 256, 64)
    assert_allclose((lo, up), (0.25 * 8.0**2, 0.25 * 24.0**2), rtol=1e-15)
    assert marchenko_pastur_edges(0.5, 64, 256) == (lo, up)
    assert marchenko_pastur_edges(1.0, 50, 50)[0] == 0.0


@pytest.mark.parametrize(
    "n_v, n_h, sigma", [(256, 64, 0.3), (64, 256, 1.0), (50, 50, 2.0), (100, 99, 1.0)]
)
def test_mp_cdf_is_the_integral_of_the_pdf(n_v, n_h, sigma):
    lo, up = marchenko_pastur_edges(sigma, n_v, n_h)
    xs = np.linspace(lo, up, 9)
    pdf = lambda t: float(marchenko_pastur_pdf(t, sigma, n_v, n_h))  # noqa: E731
    numeric = [integrate.quad(pdf, lo, x, limit=200)[0] for x in xs]
    assert_allclose(marchenko_pastur_cdf(xs, sigma, n_v, n_h), numeric, atol=1e-9)
    assert_allclose(marchenko_pastur_cdf([lo - 1.0, up + 1.0], sigma, n_v, n_h), [0.0, 1.0])
    assert marchenko_pastur_pdf(up + 1.0, sigma, n_v, n_h) == 0.0


def test_single_matrix_passes_ks_against_mp():
    # The brief's test. The q eigenvalues of one matrix are not i.i.d.: they repel and are far
    # more regular than an i.i.d. sample, so the KS p-value is conservative (near 1 under the
    # null, measured over 200 seeds). Power is checked against a reference with sigma off by 30%.
    W = np.random.default_rng(2024).normal(0.0, SIGMA, (N_V, N_H))
    eigs = wishart_eigenvalues(W)
    assert stats.kstest(eigs, lambda x: marchenko_pastur_cdf(x, SIGMA, N_V, N_H)).pvalue > 0.05
    wrong = stats.kstest(eigs, lambda x: marchenko_pastur_cdf(x, 1.3 * SIGMA, N_V, N_H)).pvalue
    assert wrong < 1e-3


def _one_eigenvalue_per_matrix(rng, sigma, n_matrices):
    out = np.empty(n_matrices)
    for k in range(n_matrices):
        eigs = wishart_eigenvalues(rng.normal(0.0, sigma, (N_V, N_H)))
        out[k] = eigs[rng.integers(eigs.size)]
    return out


def test_iid_eigenvalue_picks_pass_ks_against_mp():
    # Honest version: one uniformly chosen eigenvalue from each of M independent matrices is an
    # i.i.d. sample of the finite-size mean spectral density. Its KS distance to MP at 256 x 64
    # is 0.0033 (measured from 4000 pooled matrices), far below the KS resolution at M = 300
    # (~1.63 / sqrt(M) = 0.094 at 1%), so the nominal p-value is honest (p-values over 40 seeds
    # looked uniform). Power: a 10% error in sigma is rejected.
    rng = np.random.default_rng(77)
    sample = _one_eigenvalue_per_matrix(rng, SIGMA, 300)
    mp = lambda x: marchenko_pastur_cdf(x, SIGMA, N_V, N_H)  # noqa: E731
    assert stats.kstest(sample, mp).pvalue > 0.01
    wrong = _one_eigenvalue_per_matrix(rng, 1.1 * SIGMA, 300)
    assert stats.kstest(wrong, mp).pvalue < 1e-3


def test_initial_eigenvalues_lie_within_mp_edges():
    # Finite-size margin: the extreme eigenvalues fluctuate on the Tracy-Widom scale,
    # s_up = sigma^2 (sqrt(p) + sqrt(q)) (1/sqrt(p) + 1/sqrt(q))^(1/3) (Johnstone 2001),
    # s_lo = sigma^2 (sqrt(p) - sqrt(q)) (1/sqrt(q) - 1/sqrt(p))^(1/3) (Feldheim & Sodin 2010).
    # Here s_up = 2.4% and s_lo = 5% of the respective edge. Over 3000 matrices of 256 x 64 the
    # scaled edge fluctuations had mean -1.3, sd 1.3 (TW1: -1.21, 1.27), the outward extreme
    # 3.8 scales and the inward one 5.8, so allow 4 scales outward and require the extreme
    # eigenvalues within 8 scales inward (the bulk does fill the support).
    p, q = N_V, N_H
    s_up = SIGMA**2 * (np.sqrt(p) + np.sqrt(q)) * (1 / np.sqrt(p) + 1 / np.sqrt(q)) ** (1 / 3)
    s_lo = SIGMA**2 * (np.sqrt(p) - np.sqrt(q)) * (1 / np.sqrt(q) - 1 / np.sqrt(p)) ** (1 / 3)
    lo, up = marchenko_pastur_edges(SIGMA, N_V, N_H)
    rng = np.random.default_rng(5)
    for shape in [(N_V, N_H), (N_H, N_V)]:
        eigs = wishart_eigenvalues(rng.normal(0.0, SIGMA, shape))
        assert eigs[0] <= up + 4 * s_up
        assert eigs[-1] >= lo - 4 * s_lo
        assert eigs[0] >= up - 8 * s_up
        assert eigs[-1] <= lo + 8 * s_lo
        summary = spectrum_summary(eigs, *shape)
        assert summary["n_outliers"] <= 2


def test_mp_quantile_inverts_the_cdf():
    p = np.linspace(0.01, 0.99, 25)
    for shape in [(N_V, N_H), (64, 64), (5, 40)]:
        x = marchenko_pastur_quantile(p, *shape, sigma=0.3)
        assert_allclose(marchenko_pastur_cdf(x, 0.3, *shape), p, atol=1e-10)


@pytest.mark.parametrize("shape", [(N_V, N_H), (64, 64), (64, 16), (16, 64)])
def test_bulk_sigma_recovers_the_entry_scale_with_and_without_spikes(shape):
    # 30 i.i.d. draws: the fitted sigma is within a few 1/sqrt(q) of the true one; strong
    # spikes on a quarter of the rank bias it up (the bulk is then a smaller matrix's) by at
    # most 25%, and every spike is counted as an outlier.
    rng = np.random.default_rng(sum(shape))
    q = min(shape)
    for _ in range(30):
        W = rng.normal(0.0, SIGMA, shape)
        assert abs(fit_bulk_sigma(wishart_eigenvalues(W), *shape) / SIGMA - 1) < 4 / np.sqrt(2 * q)
        U = np.linalg.qr(rng.normal(size=(shape[0], q // 4)))[0]
        V = np.linalg.qr(rng.normal(size=(shape[1], q // 4)))[0]
        spiked = wishart_eigenvalues(W + 5 * SIGMA * np.sqrt(max(shape)) * U @ V.T)
        assert 0.95 < fit_bulk_sigma(spiked, *shape) / SIGMA < 1.25
        assert spectrum_summary(spiked, *shape)["n_outliers"] >= q // 4


def test_planted_spikes_are_outliers_of_the_fitted_bulk():
    # W = sigma G + theta u v^T with theta^2 far above the BBP threshold sigma^2 sqrt(p q).
    rng = np.random.default_rng(6)
    for n_spikes in (1, 3):
        U = np.linalg.qr(rng.normal(size=(N_V, n_spikes)))[0]
        V = np.linalg.qr(rng.normal(size=(N_H, n_spikes)))[0]
        W = rng.normal(0.0, SIGMA, (N_V, N_H)) + 4.0 * U @ V.T
        summary = spectrum_summary(wishart_eigenvalues(W), N_V, N_H)
        assert summary["n_outliers"] == n_spikes
        assert summary["lambda_max"] > 2 * summary["mp_upper"]
        assert summary["mp_ks"] < 0.15


def test_a_uniformly_grown_spectrum_has_no_outliers_but_a_distorted_one_has_a_large_ks():
    # What the initial-sigma edges got wrong: every weight x10 is still one MP law (no
    # outliers, small KS), while a flat spectrum of the same rank is far from any MP law.
    rng = np.random.default_rng(7)
    eigs = wishart_eigenvalues(10 * rng.normal(0.0, SIGMA, (N_V, N_H)))
    grown = spectrum_summary(eigs, N_V, N_H)
    assert grown["n_outliers"] <= 1 and grown["mp_ks"] < 0.1
    flat = spectrum_summary(np.linspace(1.0, 2.0, N_H), N_V, N_H)
    assert flat["mp_ks"] > 0.2


def test_numerical_rank_and_smallest_eigenvalue_are_recorded_as_data():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 10))
    eigs = wishart_eigenvalues(W)
    summary = spectrum_summary(eigs, 40, 10)
    assert summary["numerical_rank"] == 3
    assert abs(summary["lambda_min"]) < 1e-10 * summary["lambda_max"]
    assert 1.0 <= summary["effective_rank"] <= 3.0
    # The full Sigma gives the same rank (its extra eigenvalues are roundoff zeros).
    full = spectrum_summary(np.linalg.eigvalsh(W @ W.T), 40, 10)
    assert full["numerical_rank"] == 3


def test_effective_rank_of_flat_and_zero_spectra():
    assert_allclose(spectrum_summary(np.full(5, 2.0), 10, 5)["effective_rank"], 5.0)
    zero = spectrum_summary(np.zeros(4), 10, 4)
    assert zero["effective_rank"] == 0.0 and zero["numerical_rank"] == 0
    assert zero["sigma_fit"] == 0.0 and zero["n_outliers"] == 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="2-D"):
        wishart_eigenvalues(np.ones(4))
    with pytest.raises(ValueError, match="sigma"):
        marchenko_pastur_edges(0.0, 4, 2)
    with pytest.raises(ValueError, match="n_hidden"):
        marchenko_pastur_cdf(1.0, 1.0, 4, 0)
