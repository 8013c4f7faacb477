"""RBM partition function: enumeration against brute force, AIS against the exact value."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import logsumexp
from scipy.stats import chi2

from workers.measures.free_energy import ising_energy
from workers.rbm.partition import (log_partition, log_partition_ais, log_partition_bruteforce,
                               log_partition_exact, visible_bias_from_data)
from workers.rbm.ais import ais
from workers.rbm.model import RBM


def random_rbm(n_v, n_h, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(n_v, n_h)), scale * rng.normal(size=n_v),
            scale * rng.normal(size=n_h))


def ising_samples(L, T, n, rng):
    """Exact i.i.d. samples of the L x L Ising model, drawn from the enumerated distribution."""
    N = L * L
    V = (2 * ((np.arange(2 ** N)[:, None] >> np.arange(N)) & 1) - 1).astype(np.int8)
    log_w = -ising_energy(V, L) / T
    p = np.exp(log_w - logsumexp(log_w))
    return V[rng.choice(len(V), size=n, p=p)]


@pytest.fixture(scope="module")
def ising_data():
    return ising_samples(4, 2.5, 2000, np.random.default_rng(2024))


@pytest.mark.parametrize("shape", [(3, 4), (6, 2), (5, 5)])
@pytest.mark.parametrize("layer", ["hidden", "visible"])
@pytest.mark.parametrize("chunk", [None, 3])
def test_exact_matches_bruteforce(shape, layer, chunk):
    W, a, b = random_rbm(*shape, seed=sum(shape))
    ref = log_partition_bruteforce(W, a, b)
    assert_allclose(log_partition_exact(W, a, b, chunk=chunk, layer=layer), ref, rtol=1e-10)


@pytest.mark.parametrize("layer", ["hidden", "visible"])
def test_exact_is_stable_for_large_parameters(layer):
    # |W h + a| ~ 100: 2 cosh and 1 + exp overflow float64 if evaluated naively
    W, a, b = random_rbm(5, 4, seed=7, scale=60.0)
    ref = log_partition_bruteforce(W, a, b)
    assert np.isfinite(ref) and ref > 100
    assert_allclose(log_partition_exact(W, a, b, layer=layer), ref, rtol=1e-12)


def test_exact_matches_independent_units():
    # W = 0: Z = prod_i 2 cosh a_i * prod_j (1 + e^{b_j})
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=30), rng.normal(size=8)
    ref = np.log(2 * np.cosh(a)).sum() + np.log1p(np.exp(b)).sum()
    assert_allclose(log_partition_exact(np.zeros((30, 8)), a, b), ref, rtol=1e-12)


def test_exact_refuses_large_layers():
    W, a, b = random_rbm(25, 22, seed=0)
    with pytest.raises(ValueError, match="max_units"):
        log_partition_exact(W, a, b)
    with pytest.raises(ValueError, match="max_units"):
        log_partition_exact(W[:6], a[:6], b, layer="hidden")


@pytest.mark.parametrize("n_hidden", [4, 16])
def test_ais_agrees_with_exact_for_trained_rbms(ising_data, n_hidden):
    model = RBM(n_hidden, method="cd", learning_rate=0.05, batch_size=50, epochs=8,
                random_state=11).fit(ising_data)
    exact = log_partition_exact(model.W_, model.a_, model.b_)
    ln_z, err = log_partition_ais(model.W_, model.a_, model.b_, np.random.default_rng(5),
                                  data=ising_data)
    # the error bar must be informative, not merely wide enough to pass
    assert 0.0 < err < 0.05
    assert abs(ln_z - exact) < 3.0 * err, (ln_z, err, exact)


def test_ais_error_bar_is_calibrated(ising_data):
    # over independent repetitions sum z^2 must look like chi^2(reps): too large means the
    # error bar is too small (or the estimate biased), too small means it is inflated
    model = RBM(4, method="cd", learning_rate=0.05, batch_size=50, epochs=8,
                random_state=11).fit(ising_data)
    exact = log_partition_exact(model.W_, model.a_, model.b_)
    reps = 40
    z = np.empty(reps)
    for i, seed in enumerate(np.random.SeedSequence(77).spawn(reps)):
        ln_z, err = log_partition_ais(model.W_, model.a_, model.b_, np.random.default_rng(seed),
                                      data=ising_data)
        z[i] = (ln_z - exact) / err
    assert 1e-3 < chi2.cdf(np.sum(z ** 2), reps) < 1 - 1e-3, z
    assert abs(z.mean()) * np.sqrt(reps) < 4.0, z


def test_ais_without_data_uses_uniform_base():
    W, a, b = random_rbm(12, 6, seed=4, scale=0.3)
    exact = log_partition_exact(W, a, b)
    ln_z, err = log_partition_ais(W, a, b, np.random.default_rng(9))
    assert 0.0 < err < 0.05
    assert abs(ln_z - exact) < 3.0 * err, (ln_z, err, exact)


def test_ais_is_exact_when_target_is_the_base(ising_data):
    # W = 0, b = 0, a = base-rate biases: every importance weight is 1, so no variance
    a0 = visible_bias_from_data(ising_data)
    W, b = np.zeros((16, 3)), np.zeros(3)
    ln_z, err = log_partition_ais(W, a0, b, np.random.default_rng(0), data=ising_data,
                                  start_steps=20, max_steps=40)
    assert_allclose(ln_z, log_partition_exact(W, a0, b), rtol=1e-7)  # float32 parameters
    assert err < 1e-12


def test_ais_that_cannot_converge_reports_no_error_bar():
    # strong random couplings and 5 + 10 steps: the weights are far from even, so the estimate
    # is only a stochastic lower bound and no error bar is given
    W, a, b = random_rbm(40, 16, seed=2, scale=1.0)
    result = ais(W, a, b, np.zeros(40), np.random.default_rng(3), start_steps=5, max_steps=10)
    assert not result.converged and np.isnan(result.err)
    assert result.steps == (5, 10) and len(result.estimates) == len(result.errors) == 2
    assert result.ess < 0.25 * result.n_chains
    # the default budget does converge here, and then agrees with the exact value
    full = ais(W, a, b, np.zeros(40), np.random.default_rng(3))
    assert full.converged and abs(full.lnZ - log_partition_exact(W, a, b)) < 3.0 * full.err


def test_visible_bias_from_data_matches_means():
    V = np.array([[1, 1, -1], [1, -1, -1], [1, 1, -1], [1, -1, -1]], dtype=np.int8)
    a = visible_bias_from_data(V, pseudo_count=1.0)
    # p(+1) = (4+1)/6, (2+1)/6, (0+1)/6 and p(+1) = sigmoid(2 a)
    assert_allclose(1.0 / (1.0 + np.exp(-2.0 * a)), [5 / 6, 1 / 2, 1 / 6], rtol=1e-14)
    with pytest.raises(ValueError):
        visible_bias_from_data(np.zeros((3, 2)))


def test_log_partition_dispatch(ising_data):
    W, a, b = random_rbm(16, 5, seed=1, scale=0.2)
    exact = log_partition_exact(W, a, b)
    assert log_partition(W, a, b) == (exact, 0.0, "exact")
    ln_z, err, used = log_partition(W, a, b, rng=np.random.default_rng(1), data=ising_data,
                                    max_units=4)
    assert used == "ais" and err > 0 and abs(ln_z - exact) < 3.0 * err
    with pytest.raises(ValueError, match="rng"):
        log_partition(W, a, b, method="ais")
    with pytest.raises(ValueError, match="method"):
        log_partition(W, a, b, method="magic")
