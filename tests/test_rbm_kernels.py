"""The fused float32 RBM kernels: sigmoid accuracy, the random stream, Bernoulli statistics."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, logit

from workers.rbm import kernels as K
from test_rbm import LaneStream


def ulps(x, y):
    """Distance in float32 units in the last place (same-sign finite values)."""
    return np.abs(x.view(np.int32).astype(np.int64) - y.view(np.int32).astype(np.int64))


def test_sigmoid_within_two_ulp_of_the_rounded_value():
    x = np.linspace(-87, 87, 400_001, dtype=np.float32)
    out = K.sigmoid32(x)
    exact = expit(x.astype(np.float64)).astype(np.float32)  # correctly rounded reference
    assert ulps(out, exact).max() <= 2
    assert ulps(out, expit(x)).max() <= 3  # scipy's float32 expit is itself off by an ulp
    far = K.sigmoid32([-1e4, -200, 200, 1e4])
    assert far[0] < 1e-37 and far[1] < 1e-37 and far[2] == 1 and far[3] == 1
    assert_allclose(K.sigmoid32(np.array([[2.0, -2.0]])), [[0.8807971, 0.1192029]], rtol=1e-6)


def test_make_lanes_is_seeded_and_never_all_zero():
    a, b = K.make_lanes(np.random.default_rng(5)), K.make_lanes(np.random.default_rng(5))
    assert a.shape == (2, K.LANES) and a.dtype == np.uint64 and a.flags.c_contiguous
    assert_array_equal(a, b)
    assert np.all((a[0] | a[1]) != 0)
    assert not np.array_equal(a, K.make_lanes(np.random.default_rng(6)))


def test_make_lanes_revives_an_all_zero_lane():
    class ZeroRng:  # the all-zero state is a fixed point of xorshift128+
        def integers(self, low, high, size, dtype):
            out = np.zeros(size, dtype)
            out[0, 1] = 5
            return out

    lanes = K.make_lanes(ZeroRng())
    assert np.all((lanes[0] | lanes[1]) != 0)
    assert lanes[0, 1] == 5 and lanes[1, 1] == 0  # a live lane is left alone


def test_words_per_row_is_whole_blocks():
    assert [K.words_per_row(n) for n in (1, 64, 65, 256, 1024)] == [32, 32, 64, 128, 512]


def hidden_draws(pre, b, seed, sample=True, sign=1.0):
    pre = pre.copy()
    m, n = pre.shape
    h, colsum = np.full((m, n), 7, np.float32), np.empty(n, np.float32)
    lanes = K.make_lanes(np.random.default_rng(seed))
    words = np.empty(K.words_per_row(n), np.uint64)
    K.hidden_kernel(pre, b, np.float32(sign), h, sample, lanes, words, colsum)
    return pre, h, colsum, lanes


def test_hidden_step_replays_the_documented_stream():
    rng = np.random.default_rng(0)
    for n in (5, 64, 100, 256):  # one block, exact block, partial second block, four blocks
        pre = rng.normal(0, 2, (30, n)).astype(np.float32)
        b = rng.normal(0, 1, n).astype(np.float32)
        p, h, colsum, lanes = hidden_draws(pre, b, seed=n)
        replay = LaneStream(np.random.default_rng(n))
        U = replay.uniforms(30, n)
        assert_array_equal(h, (U < p).astype(np.float32))
        assert_array_equal(lanes, np.stack([replay.s0, replay.s1]))  # state advanced in place
        assert_allclose(p, expit(pre + b), rtol=3e-7)
        assert_allclose(colsum, p.sum(axis=0), rtol=1e-5)


def test_hidden_step_sign_and_no_sample():
    rng = np.random.default_rng(1)
    pre, b = rng.normal(size=(4, 9)).astype(np.float32), np.zeros(9, np.float32)
    p, _, colsum, _ = hidden_draws(pre, b, seed=0)
    q, h, colsum_q, lanes = hidden_draws(pre, b, seed=0, sample=False, sign=-1.0)
    assert_array_equal(q, -p)
    assert_array_equal(colsum_q, colsum)  # column sums of p, not of sign * p
    assert np.all(h == 7)  # untouched
    assert_array_equal(lanes, K.make_lanes(np.random.default_rng(0)))  # nothing drawn


def test_visible_step_replays_the_stream():
    rng = np.random.default_rng(2)
    m, n = 25, 130
    pre = rng.normal(0, 1, (m, n)).astype(np.float32)
    a = rng.normal(0, 0.5, n).astype(np.float32)
    v, colsum = np.empty((m, n), np.float32), np.empty(n, np.float32)
    K.visible_kernel(pre.copy(), a, v, K.make_lanes(np.random.default_rng(9)),
                   np.empty(K.words_per_row(n), np.uint64), colsum)
    p = expit(2 * (pre.astype(np.float64) + a))
    U = LaneStream(np.random.default_rng(9)).uniforms(m, n)
    clear = np.abs(U - p) > 1e-6  # away from the rounding boundary the draw is determined
    assert clear.mean() > 0.999
    assert_array_equal(v[clear], np.where(U < p, 1, -1)[clear])
    assert set(np.unique(v)) == {-1.0, 1.0}
    assert_array_equal(colsum, v.sum(axis=0))


def test_bernoulli_draws_are_unbiased_and_independent():
    # 20000 rows; unit j has p_j from 0.001 to 0.999. z-scores of the frequencies, and of the
    # correlation between neighbouring units (which sit in different lanes or word halves)
    n_rows, p = 20_000, np.linspace(0.001, 0.999, 96)
    pre = np.tile(logit(p).astype(np.float32), (n_rows, 1))
    probs, h, _, _ = hidden_draws(pre, np.zeros(96, np.float32), seed=11)
    p32 = probs[0].astype(np.float64)
    z = (h.mean(axis=0) - p32) / np.sqrt(p32 * (1 - p32) / n_rows)
    assert np.abs(z).max() < 4.5, z
    assert 0.5 < np.mean(z ** 2) < 1.5
    mid = h[:, 20:76] - h[:, 20:76].mean(axis=0)
    corr = (mid[:, :-1] * mid[:, 1:]).mean(axis=0) / (mid[:, :-1].std(axis=0) * mid[:, 1:].std(axis=0))
    assert np.abs(corr * np.sqrt(n_rows)).max() < 4.5
    # a lane against its own later output: unit j of rows r and r + 1 (same lane and half-word,
    # two outputs apart: a row of 96 units takes two blocks)
    lag = (mid[:-1] * mid[1:]).mean(axis=0) / (mid[:-1].std(axis=0) * mid[1:].std(axis=0))
    assert np.abs(lag * np.sqrt(n_rows - 1)).max() < 4.5


def test_gather_rows_and_updates_match_numpy():
    rng = np.random.default_rng(3)
    V = np.where(rng.random((50, 12)) < 0.5, 1, -1).astype(np.int8)
    idx = rng.permutation(50)[:7]
    out, colsum = np.empty((7, 12), np.float32), np.empty(12, np.float32)
    K.gather_rows(V, idx, out, colsum)
    assert_array_equal(out, V[idx])
    assert_array_equal(colsum, V[idx].sum(axis=0))

    f32 = np.float32
    W = rng.normal(size=(12, 5)).astype(f32)
    W[0, 0] = 0.0
    vel, G = rng.normal(size=(12, 5)).astype(f32), rng.normal(size=(12, 5)).astype(f32)
    mu, lr, inv_m, l2, l1 = f32(0.5), f32(0.1), f32(1 / 7), f32(1e-2), f32(1e-3)
    step = mu * vel + lr * (G * inv_m - l2 * W - l1 * np.sign(W))
    W_new = W + step
    a, b, vel_a, vel_b = (rng.normal(size=k).astype(f32) for k in (12, 5, 12, 5))
    sums = [rng.normal(size=k).astype(f32) for k in (12, 12, 5, 5)]
    expect = []
    for theta, vb, pos, neg in ((a, vel_a, *sums[:2]), (b, vel_b, *sums[2:])):
        v_new = mu * vb + lr * ((pos - neg) * inv_m)
        expect.append((theta + v_new, v_new))
    K.update_parameters(W, vel, G, a, vel_a, *sums[:2], b, vel_b, *sums[2:], mu, lr, inv_m, l2, l1)
    assert_allclose(vel, step, rtol=1e-6, atol=1e-7)
    assert_allclose(W, W_new, rtol=1e-6, atol=1e-7)
    for (theta, vb), (t_exp, v_exp) in zip(((a, vel_a), (b, vel_b)), expect):
        assert_allclose(vb, v_exp, rtol=1e-6)
        assert_allclose(theta, t_exp, rtol=1e-6)


def test_is_spin_array():
    ok = np.where(np.random.default_rng(4).random((30, 7)) < 0.5, 1, -1)
    for dtype in (np.int8, np.int64, np.float32):
        assert K.is_spin_array(ok.astype(dtype))
        for bad in (0, 2, 3, -3, 127, -127, -128):
            V = ok.astype(dtype)
            V[17, 3] = bad
            assert not K.is_spin_array(V)
    assert not K.is_spin_array(np.array([[1.0, 0.5]]))
    assert not K.is_spin_array(np.array([[1, 257]]))  # would wrap to 1 as int8
    assert K.is_spin_array(ok.astype(np.int8)[:, ::2])  # non-contiguous view
