"""The AIS kernels against plain float64 numpy, the schedule, and the run sequence."""

import math

import numpy as np
import pytest

from workers.rbm import kernels as K
from workers.rbm.ais import anneal, flip_move, thermodynamic_schedule, weight_hidden


def softplus(z):
    return np.logaddexp(0.0, z)


def test_weight_increments_match_float64():
    rng = np.random.default_rng(0)
    m, n = 5, 700
    x = (rng.normal(size=(m, n)) * 6).astype(np.float32)
    b = rng.normal(size=n).astype(np.float32)
    beta, beta_prev = np.float32(0.7312), np.float32(0.7290)
    log_w = np.zeros(m)
    q, lin, h = np.empty(n, np.float32), np.empty(n, np.float32), np.empty((m, n), np.float32)
    words = np.empty(K.words_per_row(n), np.uint64)
    weight_hidden(x, b, beta, beta_prev, h, False, K.make_lanes(rng), words, q, lin, log_w)
    z = x.astype(np.float64) + b.astype(np.float64)
    ref = (softplus(float(beta) * z) - softplus(float(beta_prev) * z)).sum(axis=1)
    # float32 exp and ratio: a few ulp (6e-8) per unit; z rounded to float32 (ulp(|z|) * dbeta)
    tol = n * 4e-7 + n * (float(beta) - float(beta_prev)) * np.abs(z).max() * 6e-8
    np.testing.assert_allclose(log_w, ref, rtol=0, atol=tol)
    assert np.abs(log_w).max() > 100 * tol  # the increments are not trivially small


def test_hidden_draws_follow_the_tempered_sigmoid():
    rng = np.random.default_rng(1)
    m, n = 4000, 64
    x = np.tile(np.linspace(-4, 4, n, dtype=np.float32), (m, 1))
    b = np.zeros(n, np.float32)
    beta = np.float32(0.6)
    h = np.empty((m, n), np.float32)
    q, lin, log_w = np.empty(n, np.float32), np.empty(n, np.float32), np.zeros(m)
    weight_hidden(x.copy(), b, beta, beta, h, True, K.make_lanes(rng), np.empty(K.words_per_row(n), np.uint64),
                  q, lin, log_w)
    assert set(np.unique(h)) <= {0.0, float(beta)}  # beta-scaled
    p = 1.0 / (1.0 + np.exp(-0.6 * x[0].astype(np.float64)))
    freq = (h > 0).mean(axis=0)
    z = (freq - p) / np.sqrt(p * (1 - p) / m)
    assert np.abs(z).max() < 4.5, z  # 64 binomial z-scores
    assert np.all(log_w == 0.0)  # beta == beta_prev: no weight change


def test_flip_move_accepts_by_the_exact_ratio():
    rng = np.random.default_rng(2)
    m, n_v, n_h = 50, 30, 20
    W = (rng.normal(size=(n_v, n_h)) * 0.4).astype(np.float32)
    a0 = (rng.normal(size=n_v) * 0.3).astype(np.float32)
    a = (rng.normal(size=n_v) * 0.3).astype(np.float32)
    b = (rng.normal(size=n_h) * 0.5).astype(np.float32)
    beta = np.float32(0.8)
    v = np.where(rng.random((m, n_v)) < 0.5, 1.0, -1.0).astype(np.float32)

    def log_p(V):
        V = V.astype(np.float64)
        a_beta = (1 - 0.8) * a0.astype(np.float64) + 0.8 * a.astype(np.float64)
        return V @ a_beta + softplus(0.8 * (b.astype(np.float64) + V @ W.astype(np.float64))).sum(axis=1)

    ratio = log_p(-v) - log_p(v)
    u = np.exp(np.clip(ratio, None, 0.0)) * np.where(np.arange(m) % 2, 0.999, 1.001)  # just either side
    A = np.stack([a0, a - a0], axis=1)
    x, s = v @ W, v @ A
    v0 = v.copy()
    q, lin = np.empty(n_h, np.float32), np.empty(n_h, np.float32)
    flips = flip_move(x, v, s, b, beta, u, q, lin)
    flipped = np.all(v == -v0, axis=1)
    expect = (ratio >= 0) | (u < np.exp(ratio))
    near = np.abs(ratio) < 1e-3  # float32 sums: too close to call
    assert np.array_equal(flipped[~near], expect[~near]) and flips == flipped.sum()
    assert 0 < flips < m
    np.testing.assert_allclose(x, v @ W, atol=1e-5)  # x and s follow the flipped rows
    np.testing.assert_allclose(s, v @ A, atol=1e-5)


def test_schedule_is_densest_where_the_increments_vary():
    grid = np.linspace(0, 1, 21).astype(np.float32)
    sd = np.r_[np.full(10, 0.1), np.full(10, 1.0)]  # ten times the spread above beta = 0.5
    betas = thermodynamic_schedule(grid, sd, 200)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and np.all(np.diff(betas) > 0)
    assert betas.dtype == np.float32 and len(betas) == 201
    upper = np.sum(betas > 0.5) / len(betas)
    # cumulative 0.8 * length + 0.2 * beta: the upper half holds (0.8 * 10/11 + 0.1) of the steps
    assert upper == pytest.approx(0.8 * 10 / 11 + 0.1, abs=0.01)
    flat = thermodynamic_schedule(grid, np.zeros(20), 50)  # no spread at all: uniform
    np.testing.assert_allclose(flat, np.linspace(0, 1, 51), atol=1e-6)


def test_anneal_records_one_spread_per_step_and_is_reproducible():
    rng_W = np.random.default_rng(4)
    W, a, b = rng_W.normal(size=(12, 5)) * 0.3, rng_W.normal(size=12) * 0.2, rng_W.normal(size=5) * 0.2
    betas = np.linspace(0, 1, 31).astype(np.float32)
    one = anneal(W, a, b, np.zeros(12), betas, 16, np.random.default_rng(5), record=True)
    two = anneal(W, a, b, np.zeros(12), betas, 16, np.random.default_rng(5), record=True)
    assert np.array_equal(one[0], two[0]) and one[1].shape == (30,) and np.all(one[1] >= 0)
    assert 0.0 <= one[2] <= 1.0 and math.isfinite(one[0].sum())
