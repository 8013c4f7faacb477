"""Wishart spectra: small side vs full Sigma, Marchenko-Pastur law at initialisation, Theorem 1."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, stats

from workers.spectra import (
    marchenko_pastur_cdf,
    marchenko_pastur_edges,
    marchenko_pastur_pdf,
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
        summary = spectrum_summary(eigs, SIGMA, *shape)
        assert summary["n_outliers"] <= 2


def test_planted_spike_is_an_outlier():
    # W = sigma G + theta u v^T with theta^2 far above the BBP threshold sigma^2 sqrt(p q).
    rng = np.random.default_rng(6)
    u = rng.normal(size=N_V) / np.sqrt(N_V)
    v = rng.normal(size=N_H) / np.sqrt(N_H)
    W = rng.normal(0.0, SIGMA, (N_V, N_H)) + 4.0 * np.outer(u, v)
    summary = spectrum_summary(wishart_eigenvalues(W), SIGMA, N_V, N_H)
    assert summary["n_outliers"] == 1
    assert summary["lambda_max"] > 2 * summary["mp_upper"]


def test_psd_and_rank_of_a_low_rank_w():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 10))
    eigs = wishart_eigenvalues(W)
    summary = spectrum_summary(eigs, 1.0, 40, 10)
    assert summary["numerical_rank"] == 3
    assert summary["psd_ok"] and summary["rank_ok"]
    assert 1.0 <= summary["effective_rank"] <= 3.0
    # The full Sigma gives the same verdicts (its extra eigenvalues are roundoff zeros).
    full = spectrum_summary(np.linalg.eigvalsh(W @ W.T), 1.0, 40, 10)
    assert full["numerical_rank"] == 3 and full["psd_ok"] and full["rank_ok"]


def test_effective_rank_of_flat_and_zero_spectra():
    assert_allclose(spectrum_summary(np.full(5, 2.0), 1.0, 10, 5)["effective_rank"], 5.0)
    zero = spectrum_summary(np.zeros(4), 1.0, 10, 4)
    assert zero["effective_rank"] == 0.0 and zero["numerical_rank"] == 0 and zero["psd_ok"]


def test_non_psd_and_over_rank_fake_spectra_are_flagged():
    assert not spectrum_summary([1.0, 0.5, -1e-3], 1.0, 8, 3)["psd_ok"]
    assert not spectrum_summary([-1.0, -2.0], 1.0, 8, 2)["psd_ok"]
    assert spectrum_summary([1.0, 0.5, -1e-10], 1.0, 8, 3)["psd_ok"]  # roundoff-sized
    over = spectrum_summary(np.ones(5), 1.0, 8, 3)
    assert over["numerical_rank"] == 5 and not over["rank_ok"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="2-D"):
        wishart_eigenvalues(np.ones(4))
    with pytest.raises(ValueError, match="sigma"):
        marchenko_pastur_edges(0.0, 4, 2)
    with pytest.raises(ValueError, match="n_hidden"):
        marchenko_pastur_cdf(1.0, 1.0, 4, 0)
