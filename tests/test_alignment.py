"""RG block alignment: vectorised vs loop reference, planted block RBMs, block correlation."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import comb, expit

from workers.measures.alignment import (
    block_alignment,
    block_correlation,
    block_means,
    periodic_box_sums,
)
from contract.estimators import block_sizes


def _block_sites(L, b, row, col):
    return np.array([((row + dr) % L) * L + (col + dc) % L for dr in range(b) for dc in range(b)])


def _alignment_loop(W, L, b):
    """Slow reference: every unit, every placement, every site of the block."""
    n_h = W.shape[1]
    score, rows, cols = np.empty(n_h), np.empty(n_h, int), np.empty(n_h, int)
    for j in range(n_h):
        norm = np.sum(W[:, j] ** 2)
        best, where = -1.0, (0, 0)
        for r in range(L):
            for c in range(L):
                frac = np.sum(W[_block_sites(L, b, r, c), j] ** 2) / norm
                if frac > best:
                    best, where = frac, (r, c)
        score[j], (rows[j], cols[j]) = best, where
    return score, rows, cols


def planted_block_model(L, b, weight, offset=(0, 0)):
    """RBM whose hidden units each couple with `weight` to one tile of a b x b tiling shifted by
    `offset` (so tiles may wrap around the torus); no visible bias. Returns W, hidden bias
    (chosen so p(h_j = 1) = 1/2), rows, cols of the tiles, and the owner unit of every site."""
    n_side = L // b
    rows = np.array([(offset[0] + b * (j // n_side)) % L for j in range(n_side**2)])
    cols = np.array([(offset[1] + b * (j % n_side)) % L for j in range(n_side**2)])
    W = np.zeros((L * L, n_side**2))
    owner = np.empty(L * L, dtype=int)
    for j in range(n_side**2):
        sites = _block_sites(L, b, rows[j], cols[j])
        W[sites, j] = weight
        owner[sites] = j
    # Marginal p(h=1) = sigmoid(c + b^2 log cosh w) because the blocks are disjoint.
    c = np.full(n_side**2, -b * b * np.log(np.cosh(weight)))
    return W, c, rows, cols, owner


def sample_planted(rng, owner, weight, c, n):
    """Exact ancestral samples of the planted model: h_j ~ Bernoulli(sigmoid(c_j + b^2 log cosh w))
    independently (disjoint blocks), then v_i = +1 with probability sigmoid(2 w h_owner(i))."""
    B = np.bincount(owner)[0]
    h = rng.random((n, c.size)) < expit(c + B * np.log(np.cosh(weight)))
    p_up = expit(2.0 * weight * h[:, owner])
    return np.where(rng.random(p_up.shape) < p_up, 1, -1).astype(np.int8)


def exact_block_correlation(B, weight, c):
    """Population corr of sigmoid(c + w s) and s / B for one planted block of B sites, by
    enumerating the number k of up spins (s = 2k - B)."""
    k = np.arange(B + 1)
    s = 2.0 * k - B
    pi = expit(c + B * np.log(np.cosh(weight)))
    q = expit(2.0 * weight)
    pk = (1 - pi) * comb(B, k) * 0.5**B + pi * comb(B, k) * q**k * (1 - q) ** (B - k)
    x, y = expit(c + weight * s), s / B
    ex, ey = pk @ x, pk @ y
    cov = pk @ (x * y) - ex * ey
    return cov / np.sqrt((pk @ x**2 - ex**2) * (pk @ y**2 - ey**2))


def test_block_sizes_auto_and_chosen():
    """One rule for every layer: "auto" is every divisor 2 <= b <= L/2; a chosen list (one list
    for all lattice sizes of a sweep) keeps the b that divide L with b <= L/2, ascending."""
    assert block_sizes(8) == [2, 4]
    assert block_sizes(16, "auto") == [2, 4, 8]
    assert block_sizes(12) == [2, 3, 4, 6]
    assert block_sizes(7) == [] and block_sizes(2) == []
    assert block_sizes(8, (4, 2)) == [2, 4]
    assert block_sizes(16, (2, 3, 8, 16)) == [2, 8]


@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_periodic_box_sums_equal_rolled_sums(b):
    rng = np.random.default_rng(b)
    A = rng.normal(size=(5, 5, 3))
    ref = sum(np.roll(A, (-dr, -dc), axis=(0, 1)) for dr in range(b) for dc in range(b))
    assert_allclose(periodic_box_sums(A, b), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("b", [2, 4])
def test_vectorised_equals_loop_reference(b):
    L = 8
    W = np.random.default_rng(10 + b).normal(size=(L * L, 12))
    out = block_alignment(W, L, b)
    score, rows, cols = _alignment_loop(W, L, b)
    assert_allclose(out["score"], score, rtol=1e-12)
    assert_array_equal(out["row"], rows)
    assert_array_equal(out["col"], cols)
    assert_allclose(out["baseline"], np.full(12, b * b / L**2))
    assert out["row"].dtype == np.int64 and out["score"].dtype == np.float64


@pytest.mark.parametrize("b, row, col", [(2, 3, 5), (2, 7, 7), (4, 0, 0), (4, 6, 5), (3, 7, 1)])
def test_planted_receptive_field_scores_one_at_its_corner(b, row, col):
    L = 8
    rng = np.random.default_rng(row * L + col)
    W = np.zeros((L * L, 2))
    W[_block_sites(L, b, row, col), 0] = rng.normal(size=b * b)  # wraps when row/col + b > L
    W[_block_sites(L, b, (row + 2) % L, col), 1] = 1.0
    out = block_alignment(W, L, b)
    assert_allclose(out["score"], 1.0, rtol=1e-12)
    assert (out["row"][0], out["col"][0]) == (row, col)
    assert (out["row"][1], out["col"][1]) == ((row + 2) % L, col)


def test_score_is_at_least_baseline_and_equal_for_uniform_magnitudes():
    L, b = 8, 2
    rng = np.random.default_rng(3)
    gauss = block_alignment(rng.normal(size=(L * L, 200)), L, b)
    # Exact identity: the placement-average of the block share is b^2/L^2, so max >= baseline;
    # for Gaussian fields the max sits well above it (measured mean 0.19 vs 0.0625 here).
    assert np.all(gauss["score"] > gauss["baseline"])
    assert 0.1 < gauss["score"].mean() < 0.3
    flat = block_alignment(rng.choice([-0.3, 0.3], size=(L * L, 10)), L, b)
    assert_allclose(flat["score"], b * b / L**2, rtol=1e-12)


def test_zero_norm_unit_gets_baseline():
    W = np.zeros((16, 2))
    W[5, 1] = 2.0
    out = block_alignment(W, 4, 2)
    assert out["score"][0] == 0.25 and (out["row"][0], out["col"][0]) == (0, 0)
    assert out["score"][1] == 1.0


@pytest.mark.parametrize("b, offset", [(2, (1, 3)), (4, (2, 5))])
def test_planted_rbm_scores_near_one_structureless_at_baseline(b, offset):
    L = 8
    rng = np.random.default_rng(40 + b)
    W, _, rows, cols, _ = planted_block_model(L, b, 0.5, offset)
    noisy = W + rng.normal(0.0, 0.02, W.shape)
    out = block_alignment(noisy, L, b)
    # Expected share of the noise outside the block: (L^2 - b^2) 0.02^2 / (b^2 0.25) < 0.03.
    assert np.all(out["score"] > 0.95)
    assert_array_equal(out["row"], rows)
    assert_array_equal(out["col"], cols)
    flat = block_alignment(np.abs(W).max() * rng.choice([-1.0, 1.0], size=W.shape), L, b)
    assert_allclose(flat["score"], b * b / L**2, rtol=1e-12)


def test_block_correlation_on_planted_samples_matches_exact_value():
    L, b, w, n = 8, 2, 0.5, 3000
    rng = np.random.default_rng(2025)
    W, c, rows, cols, owner = planted_block_model(L, b, w, offset=(1, 3))
    V = sample_planted(rng, owner, w, c, n)  # held out: never used to build W
    align = block_alignment(W, L, b)
    corr = block_correlation(W, c, L, b, align["row"], align["col"], V)
    rho = exact_block_correlation(b * b, w, c[0])
    # Units couple to disjoint blocks and samples are independent, so the 16 per-unit estimates
    # are i.i.d.; their spread gives the error bar of their mean (bias O(1/n) is negligible).
    se = corr.std(ddof=1) / np.sqrt(corr.size)
    assert rho > 0.95
    assert abs(corr.mean() - rho) < 4 * se
    assert np.all(corr > 0.9)
    # Against a block that belongs to another unit the population correlation is exactly 0.
    other = block_correlation(W, c, L, b, (align["row"] + b) % L, align["col"], V)
    assert np.all(other < 5 / np.sqrt(n))
    # The block means handed in (shared by an RBM and its null) give the very same numbers.
    assert_array_equal(block_correlation(W, c, L, b, align["row"], align["col"], V,
                                         means=block_means(V, L, b)), corr)


def test_block_correlation_is_zero_for_constant_series():
    L, b = 4, 2
    W = np.zeros((16, 2))
    W[_block_sites(L, b, 0, 0), 1] = 1.0
    V = np.random.default_rng(0).choice([-1, 1], size=(50, 16))
    V[:, _block_sites(L, b, 2, 2)] = 1  # unit 1 looks at a frozen block below
    corr = block_correlation(W, np.zeros(2), L, b, [0, 2], [0, 2], V)
    assert_array_equal(corr, [0.0, 0.0])  # unit 0: constant activation; unit 1: frozen block
    assert not np.any(np.isnan(corr))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="L\\*L"):
        block_alignment(np.ones((10, 2)), 4, 2)
    with pytest.raises(ValueError, match="block size"):
        block_alignment(np.ones((16, 2)), 4, 5)
    with pytest.raises(ValueError, match="\\+-1"):
        block_correlation(np.ones((16, 1)), [0.0], 4, 2, [0], [0], np.zeros((3, 16)))
    with pytest.raises(ValueError, match="rows and cols"):
        block_correlation(np.ones((16, 1)), [0.0], 4, 2, [4], [0], np.ones((3, 16)))


def test_permuted_site_null_separates_geometry_from_weight_statistics():
    # The null (same weights, sites shuffled) has the same weight distribution but no geometry:
    # a planted block field keeps a large excess; i.i.d. Gaussian fields have excess 0 on
    # average (their scores are well above b^2/L^2, which is why b^2/L^2 is not a null).
    from workers.measures.tables import alignment_rows

    L, b = 8, 2
    rng = np.random.default_rng(5)
    perm = rng.permutation(L * L)
    W, b_h, _, _, _ = planted_block_model(L, b, 2.0)
    V = np.where(rng.random((400, L * L)) < 0.5, 1, -1).astype(np.int8)
    planted = alignment_rows(W, L, [b], b_hidden=b_h, V=V, perm=perm)[0]
    # four equal weights scattered by the permutation: the null's best block holds one or two
    assert np.all(planted["score"] > 0.99) and np.all(planted["excess"] >= 0.5 - 1e-12)
    assert planted["excess"].mean() > 0.6
    assert np.all(planted["corr"] > planted["null_corr"])
    units = 4000
    noise = alignment_rows(rng.normal(size=(L * L, units)), L, [b], perm=perm)[0]
    assert noise["score"].mean() > 2.5 * b * b / (L * L)
    excess = noise["excess"]
    assert abs(excess.mean()) < 3 * excess.std(ddof=1) / np.sqrt(units)
    assert np.all(np.isnan(noise["null_corr"]))  # no data given: no correlation, no null
