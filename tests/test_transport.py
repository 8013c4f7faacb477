"""Bures-Wasserstein distance on the Wishart cone: small side vs full formula, metric axioms."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from contract.estimators import bures_wasserstein_sq
from workers.measures.transport import bures_wasserstein_full, transport_path, wasserstein1


def _orthogonal(rng, k):
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return q * np.sign(np.diag(r))


def _three_term(W1, W2):
    """The docs/conventions.md formula literally, for comparison with the Procrustes evaluation."""
    nuc = np.linalg.svd(W1.T @ W2, compute_uv=False).sum()
    return np.sum(W1 * W1) + np.sum(W2 * W2) - 2.0 * nuc


# (n_visible, n_hidden_1, n_hidden_2): tall, unequal widths, wide (n_h > n_v), square.
SHAPES = [(16, 4, 4), (25, 3, 9), (9, 16, 5), (12, 12, 12), (6, 20, 20), (36, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_small_side_equals_full_formula(shape):
    n, k1, k2 = shape
    rng = np.random.default_rng(1000 + n * k1 * k2)
    W1 = rng.normal(0.0, 0.3, (n, k1))
    W2 = rng.normal(0.0, 1.7, (n, k2))
    small = bures_wasserstein_sq(W1, W2)
    full = bures_wasserstein_full(W1 @ W1.T, W2 @ W2.T)
    assert small > 0
    assert_allclose(small, full, rtol=1e-8)
    assert_allclose(small, _three_term(W1, W2), rtol=1e-8)


def test_commuting_covariances_closed_form():
    # Diagonal S1, S2 commute: W2^2 = sum (sqrt(a_i) - sqrt(b_i))^2 exactly.
    a = np.array([4.0, 1.0, 0.25, 0.0, 9.0])
    b = np.array([1.0, 1.0, 4.0, 2.0, 0.0])
    W1 = np.diag(np.sqrt(a))
    W2 = np.diag(np.sqrt(b))
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert_allclose(bures_wasserstein_sq(W1, W2), expected, rtol=1e-13)
    assert_allclose(bures_wasserstein_full(np.diag(a), np.diag(b)), expected, rtol=1e-12)


def test_invariant_under_right_orthogonal_rotation():
    rng = np.random.default_rng(7)
    W1 = rng.normal(size=(20, 6))
    W2 = rng.normal(size=(20, 6))
    Q1, Q2 = _orthogonal(rng, 6), _orthogonal(rng, 6)
    d = bures_wasserstein_sq(W1, W2)
    assert_allclose(bures_wasserstein_sq(W1 @ Q1, W2 @ Q2), d, rtol=1e-12)
    # Zero columns do not change W W^T either.
    assert_allclose(bures_wasserstein_sq(np.hstack([W1, np.zeros((20, 3))]), W2), d, rtol=1e-12)


def test_zero_distance_to_itself_and_to_rotations():
    rng = np.random.default_rng(8)
    W = rng.normal(size=(30, 8))
    scale = np.sum(W * W)
    assert bures_wasserstein_sq(W, W) <= 1e-24 * scale
    assert bures_wasserstein_sq(W, W @ _orthogonal(rng, 8)) <= 1e-24 * scale
    # A genuinely different covariance is far from zero.
    assert bures_wasserstein_sq(W, 1.01 * W) > 1e-6 * scale


def test_nearby_checkpoints_keep_relative_accuracy():
    # W2 = W1 (1 + t): the Bures distance is exactly t ||W1||_F (a ray of the cone).
    rng = np.random.default_rng(9)
    W = rng.normal(size=(40, 10))
    for t in (1e-3, 1e-6, 1e-9):
        d = np.sqrt(bures_wasserstein_sq(W, (1.0 + t) * W))
        assert_allclose(d, t * np.linalg.norm(W), rtol=1e-5)


def test_symmetric():
    rng = np.random.default_rng(10)
    for n, k1, k2 in SHAPES:
        W1, W2 = rng.normal(size=(n, k1)), rng.normal(size=(n, k2))
        assert_allclose(bures_wasserstein_sq(W1, W2), bures_wasserstein_sq(W2, W1), rtol=1e-12)


def test_triangle_inequality_on_random_triples():
    rng = np.random.default_rng(11)
    for _ in range(100):
        n = int(rng.integers(2, 20))
        shapes = [(n, int(rng.integers(1, 8))) for _ in range(3)]
        Ws = [rng.normal(0.0, rng.uniform(0.1, 3.0), shape) for shape in shapes]
        d = lambda A, B: np.sqrt(bures_wasserstein_sq(A, B))  # noqa: E731
        assert d(Ws[0], Ws[2]) <= d(Ws[0], Ws[1]) + d(Ws[1], Ws[2]) + 1e-12


def test_full_reference_handles_rank_deficient_psd():
    rng = np.random.default_rng(12)
    W1, W2 = rng.normal(size=(15, 2)), rng.normal(size=(15, 3))
    S1, S2 = W1 @ W1.T, W2 @ W2.T
    assert_allclose(bures_wasserstein_full(S1, S1), 0.0, atol=1e-10 * np.trace(S1))
    assert_allclose(bures_wasserstein_full(S1, np.zeros_like(S1)), np.trace(S1), rtol=1e-12)
    assert_allclose(bures_wasserstein_full(S1, S2), bures_wasserstein_full(S2, S1), rtol=1e-10)


def test_transport_path():
    rng = np.random.default_rng(13)
    W0 = rng.normal(0.0, 0.1, (16, 4))
    Ws = [W0]
    for _ in range(4):
        Ws.append(Ws[-1] + rng.normal(0.0, 0.05, W0.shape))
    out = transport_path(Ws)
    assert set(out) == {"w2_to_init", "w2_to_prev", "path_length"}
    for key in out:
        assert out[key].shape == (5,) and out[key].dtype == np.float64
    assert out["w2_to_init"][0] == 0.0 and out["w2_to_prev"][0] == 0.0
    for k in range(1, 5):
        assert_allclose(out["w2_to_init"][k], np.sqrt(bures_wasserstein_sq(W0, Ws[k])), rtol=1e-14)
        prev = np.sqrt(bures_wasserstein_sq(Ws[k - 1], Ws[k]))
        assert_allclose(out["w2_to_prev"][k], prev, rtol=1e-14)
    assert_array_equal(out["path_length"], np.cumsum(out["w2_to_prev"]))
    assert np.all(out["path_length"] >= out["w2_to_init"] - 1e-12)
    assert np.all(out["w2_to_prev"][1:] > 0)


def test_wasserstein1_known_values():
    x = np.array([0.0, 1.0, 3.0])
    assert_allclose(wasserstein1(x, x + 2.5), 2.5, rtol=1e-14)
    assert wasserstein1(x, x[::-1]) == 0.0
    # Point masses at 0 and at 1 with weights 1/2: W1 to the mass at 0 is 1/2.
    assert_allclose(wasserstein1([0.0, 1.0], [0.0]), 0.5, rtol=1e-14)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="same n_visible"):
        bures_wasserstein_sq(np.ones((4, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        bures_wasserstein_sq(np.full((4, 2), np.nan), np.ones((4, 2)))
    with pytest.raises(ValueError, match="at least one"):
        transport_path([])
    with pytest.raises(ValueError, match="non-empty"):
        wasserstein1([], [1.0])
