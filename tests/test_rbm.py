"""RBM estimator: brute-force checks of F and the conditionals, sampling, training behaviour."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit, logsumexp
from scipy.stats import chisquare

from workers.measures.free_energy import bond_rbm, ising_energy, nll_per_spin
from workers.rbm.partition import log_partition_exact
from workers.rbm.model import RBM
from workers.rbm.kernels import LANES


class LaneStream:
    """Plain-numpy replay of workers.rbm.kernels' random stream (module docstring there)."""

    def __init__(self, rng):
        self.s0, self.s1 = rng.integers(0, 2**64, size=(2, LANES), dtype=np.uint64)

    def uniforms(self, rows, n):
        n_blocks = -(-n // (2 * LANES))
        out = np.empty((rows, n), np.float32)
        for r in range(rows):
            words = []
            for _ in range(n_blocks):
                x, y = self.s0, self.s1
                words.append(x + y)
                x = x ^ (x << np.uint64(23))
                self.s0, self.s1 = y, x ^ y ^ (x >> np.uint64(18)) ^ (y >> np.uint64(5))
            halves = np.concatenate(words).astype("<u8").view("<u4")[:n]
            out[r] = (halves >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
        return out


def states(n, spins):
    bits = (np.arange(2 ** n)[:, None] >> np.arange(n)) & 1
    return (2 * bits - 1) if spins else bits


def tiny_model(n_v=4, n_h=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return RBM.from_params(scale * rng.normal(size=(n_v, n_h)), scale * rng.normal(size=n_v),
                           scale * rng.normal(size=n_h))


def minus_energy(model):
    """-E(v, h) for every (v, h): (2^n_v, 2^n_h) in float64, with the model's float32 values."""
    W, a, b = (x.astype(np.float64) for x in (model.W_, model.a_, model.b_))
    V, H = states(W.shape[0], True), states(W.shape[1], False)
    return V, H, (V @ a)[:, None] + (H @ b)[None, :] + V @ W @ H.T


def ising_exact(L, T):
    """All configurations, energies and Boltzmann probabilities of the L x L torus."""
    V = states(L * L, True).astype(np.int8)
    H = ising_energy(V, L)
    log_w = -H / T
    return V, H, np.exp(log_w - logsumexp(log_w))


@pytest.fixture(scope="module")
def split_data():
    """Exact i.i.d. L=4, T=2.5 Ising samples: 2000 for training, 1000 held out."""
    V, H, p = ising_exact(4, 2.5)
    rows = np.random.default_rng(2024).choice(len(V), size=3000, p=p)
    return V[rows[:2000]], V[rows[2000:]], (p @ H / 2.5 + logsumexp(-H / 2.5)) / 16


def test_free_energy_matches_bruteforce():
    model = tiny_model()
    V, _, mE = minus_energy(model)
    assert_allclose(model.free_energy(V), -logsumexp(mE, axis=1), rtol=1e-12)


def test_conditionals_match_bruteforce():
    model = tiny_model(seed=1)
    V, H, mE = minus_energy(model)
    p_joint = np.exp(mE - logsumexp(mE))
    # p(h_j = 1 | v) = sum_{h: h_j = 1} p(v, h) / p(v)
    p_h = (p_joint @ H) / p_joint.sum(axis=1, keepdims=True)
    assert_allclose(model.hidden_proba(V), p_h, rtol=1e-10)
    # p(v_i = +1 | h) = sum_{v: v_i = +1} p(v, h) / p(h)
    p_v = ((V > 0).T @ p_joint).T / p_joint.sum(axis=0)[:, None]
    assert_allclose(model.visible_proba(H), p_v, rtol=1e-10)


def test_gibbs_kernel_equals_reference():
    # the in-place float32 kernel against a plain numpy transcription, same seed, same draws
    model = tiny_model(n_v=12, n_h=5, seed=2)
    W, a, b = model.W_, model.a_, model.b_
    V0 = np.where(np.random.default_rng(0).random((40, 12)) < 0.5, 1, -1).astype(np.int8)
    lanes = LaneStream(np.random.default_rng(3))
    v = V0.astype(np.float32)
    for _ in range(5):
        ph = expit(v @ W + b)
        h = (lanes.uniforms(40, 5) < ph).astype(np.float32)
        pv = expit(2 * (h @ W.T + a))
        v = np.where(lanes.uniforms(40, 12) < pv, 1, -1).astype(np.float32)
    assert_array_equal(model.gibbs(V0, 5, np.random.default_rng(3)), v.astype(np.int8))


def test_conditional_samplers_are_unbiased():
    model = tiny_model(n_v=5, n_h=4, seed=4)
    rng = np.random.default_rng(5)
    n = 20000
    V = np.tile(np.array([[1, -1, 1, 1, -1]], dtype=np.int8), (n, 1))
    H = np.tile(np.array([[1, 0, 1, 1]], dtype=np.int8), (n, 1))
    for draws, p in [(model.sample_hidden(V, rng), model.hidden_proba(V[:1])[0]),
                     (model.sample_visible(H, rng) > 0, model.visible_proba(H[:1])[0])]:
        z = (draws.mean(axis=0) - p) / np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(z) < 4), z
    assert set(np.unique(model.sample_visible(H[:100], rng))) == {-1, 1}


def test_sample_follows_exact_marginal():
    # final states of many independent chains are i.i.d. draws of p(v) = exp(-F) / Z
    model = tiny_model(n_v=4, n_h=3, seed=6, scale=0.8)
    V = states(4, True)
    log_q = -model.free_energy(V)
    p = np.exp(log_q - logsumexp(log_q))
    draws = model.sample(n_chains=20000, n_steps=1, rng=np.random.default_rng(7), burn_in=30)
    assert draws.shape == (20000, 4) and draws.dtype == np.int8
    counts = np.bincount(((draws > 0) * (1 << np.arange(4))).sum(axis=1), minlength=16)
    assert chisquare(counts, 20000 * p).pvalue > 1e-3


def test_bond_rbm_sampling_reproduces_ising_energy():
    # L=4, T=3: exact <H>/N by enumeration; error bar from the spread of independent chain
    # means (each chain 1000 draws, far longer than its autocorrelation time)
    L, T, n_chains, n_steps = 4, 3.0, 64, 1000
    _, H, p = ising_exact(L, T)
    u_exact = p @ H / 16
    model = RBM.from_params(*bond_rbm(L, T))
    draws = model.sample(n_chains, n_steps, np.random.default_rng(8), burn_in=200)
    e = ising_energy(draws, L).reshape(n_steps, n_chains) / 16
    chain_means = e.mean(axis=0)
    err = chain_means.std(ddof=1) / np.sqrt(n_chains)
    assert abs(chain_means.mean() - u_exact) < 4 * err, (chain_means.mean(), err, u_exact)
    assert err < 0.01


def test_sample_layout_and_thinning():
    model = tiny_model(n_v=6, n_h=2, seed=9)
    init = np.ones((3, 6), dtype=np.int8)
    a = model.sample(3, 10, np.random.default_rng(1), init=init, thin=5)
    b = model.sample(3, 10, np.random.default_rng(1), init=init, thin=1)
    assert a.shape == (6, 6) and b.shape == (30, 6)
    # records are every thin-th step, record-major: a's record 1 is b's step 10
    assert_array_equal(a.reshape(2, 3, 6)[1], b.reshape(10, 3, 6)[9])
    assert_array_equal(a.reshape(2, 3, 6)[0], b.reshape(10, 3, 6)[4])


def _softplus(x):
    return np.logaddexp(0.0, x)


def reference_fit(V, n_h, method, k, lr0, mu, l1, l2, batch_size, epochs, schedule, seed,
                  centering=False, flip=False, averaging=0.0):
    """Plain transcription of the documented CD-k / PCD-k update, float32, same draw order:
    centered steps, global-flip moves on the PCD chains and Polyak averaging when asked."""
    f32 = np.float32
    rng = np.random.default_rng(seed)
    n, n_v = V.shape
    W = rng.normal(0.0, 0.01, size=(n_v, n_h)).astype(f32)
    b = np.zeros(n_h, f32)
    a = (0.5 * np.log(((V > 0).sum(0) + 1.0) / ((V < 0).sum(0) + 1.0))).astype(f32)
    m_max = min(batch_size, n)
    if method == "pcd":  # chains start at random training rows
        chains = V[rng.choice(n, size=m_max, replace=False)].astype(f32)
    lanes = LaneStream(rng)  # Gibbs draws; the minibatch orders stay with rng
    vel = [np.zeros_like(W), np.zeros_like(a), np.zeros_like(b)]
    total, t = epochs * -(-n // m_max), 0
    mu_v = (V.sum(0) / n).astype(f32)
    lam = np.full(n_h, 0.5, f32)
    start = total - int(round(averaging * total)) if averaging else total
    mean, n_mean = None, 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for s in range(0, n, m_max):
            vp = V[order[s:s + m_max]].astype(f32)
            m = len(vp)
            php = expit(vp @ W + b)
            vn = vp.copy() if method == "cd" else chains[:m]
            if method == "pcd" and flip:  # F(v) - F(-v) in float64, accept min(1, exp(.))
                u = rng.random(m)
                x = (vn @ W).astype(np.float64)
                d = -2 * (vn @ a) - (_softplus(b + x) - _softplus(b - x)).sum(1)
                vn[(d >= 0) | (u < np.exp(np.minimum(d, 0)))] *= -1
            phn = expit(vn @ W + b)
            for _ in range(k):
                h = (lanes.uniforms(m, n_h) < phn).astype(f32)
                pv = expit((h @ W.T + a) * f32(2))
                vn = np.where(lanes.uniforms(m, n_v) < pv, f32(1), f32(-1))
                phn = expit(vn @ W + b)
            if method == "pcd":
                chains[:m] = vn
            gW = vp.T @ php
            gW -= vn.T @ phn
            gW *= f32(1.0 / m)
            dv, dh = vp.mean(0) - vn.mean(0), php.mean(0) - phn.mean(0)
            if centering:
                lam = lam * f32(0.99) + f32(0.01) * php.mean(0)
                gW -= np.outer(mu_v, dh) + np.outer(dv, lam)
            gW -= f32(l2) * W
            gW -= f32(l1) * np.sign(W)
            p = t / total
            lr = f32({"constant": lr0, "linear": lr0 * (1 - 0.9 * p),
                      "inverse": lr0 / (1 + 9 * p)}[schedule])
            for theta, v_, g in zip((W, a, b), vel, [gW, dv, dh]):
                v_ *= f32(mu)
                v_ += lr * g
                theta += v_
            if centering:  # the stored parameters follow the centered ones
                a -= vel[0] @ lam
                b -= vel[0].T @ mu_v
            t += 1
            if t > start:
                n_mean += 1
                if mean is None:
                    mean = [W.copy(), a.copy(), b.copy()]
                else:
                    for avg, x in zip(mean, (W, a, b)):
                        avg += (x - avg) / n_mean
    if mean is not None:
        W, a, b = mean
    return W, a, b, (chains if method == "pcd" else None)


@pytest.mark.parametrize("method, k, schedule", [("cd", 1, "constant"), ("cd", 2, "linear"),
                                                 ("pcd", 1, "inverse"), ("pcd", 3, "linear")])
def test_fit_equals_reference_implementation(split_data, method, k, schedule):
    # 70 rows in batches of 25: the last minibatch is partial, PCD reuses the first 20 chains
    V = split_data[0][:70]
    kw = dict(k=k, lr0=0.05, mu=0.5, l1=1e-3, l2=1e-2, batch_size=25, epochs=3,
              schedule=schedule, seed=42)
    W, a, b, chains = reference_fit(V, 4, method, **kw)
    model = RBM(4, method=method, k=k, learning_rate=0.05, momentum=0.5, l1=1e-3, l2=1e-2,
                batch_size=25, epochs=3, lr_schedule=schedule, random_state=42).fit(V)
    assert_allclose(model.W_, W, rtol=1e-6, atol=1e-7)
    assert_allclose(model.a_, a, rtol=1e-6, atol=1e-7)
    assert_allclose(model.b_, b, rtol=1e-6, atol=1e-7)
    if method == "pcd":  # the persistent chains, the short last minibatch's idle ones included
        assert_array_equal(model.persistent_chains_, chains.astype(np.int8))
    else:
        assert model.persistent_chains_ is None


@pytest.mark.parametrize("method, centering, flip, averaging", [
    ("pcd", True, True, 0.5), ("pcd", False, True, 0.0), ("cd", True, False, 0.3),
    ("pcd", True, False, 0.0)])
def test_centered_flip_and_averaged_fit_equals_reference(split_data, method, centering, flip, averaging):
    V = split_data[0][:70]
    kw = dict(k=2, lr0=0.05, mu=0.5, l1=1e-3, l2=1e-2, batch_size=25, epochs=4,
              schedule="linear", seed=7)
    W, a, b, chains = reference_fit(V, 4, method, centering=centering, flip=flip,
                                    averaging=averaging, **kw)
    model = RBM(4, method=method, k=2, learning_rate=0.05, momentum=0.5, l1=1e-3, l2=1e-2,
                batch_size=25, epochs=4, lr_schedule="linear", centering=centering,
                flip_moves=flip, averaging=averaging, random_state=7).fit(V)
    assert_allclose(model.W_, W, rtol=2e-5, atol=2e-6)
    assert_allclose(model.a_, a, rtol=2e-5, atol=2e-6)
    assert_allclose(model.b_, b, rtol=2e-5, atol=2e-6)
    if chains is not None:
        assert_array_equal(model.persistent_chains_, chains.astype(np.int8))
    if flip:
        assert 0.0 < model.flip_rate_ <= 1.0


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_training_lowers_held_out_nll(split_data, method):
    train, test, entropy = split_data
    seen = {}

    def record(epoch, model):
        ln_z = log_partition_exact(model.W_, model.a_, model.b_)
        seen[epoch] = (nll_per_spin(model, test, ln_z), model.free_energy(test) + ln_z)

    RBM(8, method=method, learning_rate=0.02, batch_size=50, epochs=10,
        random_state=1).fit(train, checkpoints=[10], callback=record)
    (nll0, nlq0), (nll1, nlq1) = seen[0], seen[10]
    assert_allclose([nll0, nll1], [nlq0.mean() / 16, nlq1.mean() / 16], rtol=1e-12)
    # paired standard error of the held-out improvement, from the per-sample -log q(v)
    se = np.std(nlq0 - nlq1, ddof=1) / np.sqrt(len(test)) / 16
    assert nll0 - nll1 > 4 * se, (nll0, nll1, se)
    assert nll0 - nll1 > 0.1  # from ~ln 2 (near-independent spins) most of the way down
    # a cross-entropy cannot beat the entropy of the data distribution
    se1 = np.std(nlq1, ddof=1) / np.sqrt(len(test)) / 16
    assert nll1 > entropy - 4 * se1, (nll1, entropy, se1)


def test_fit_is_deterministic_given_the_seed(split_data):
    train = split_data[0][:500]
    for method in ("cd", "pcd"):
        kw = dict(method=method, epochs=3, batch_size=64, random_state=123)
        m1, m2 = RBM(6, **kw).fit(train), RBM(6, **kw).fit(train)
        assert_array_equal(m1.W_, m2.W_)
        assert_array_equal(m1.b_, m2.b_)
        m3 = RBM(6, **{**kw, "random_state": 124}).fit(train)
        assert not np.array_equal(m1.W_, m3.W_)


def test_callback_at_initialisation_and_checkpoints(split_data):
    train = split_data[0][:300]
    seen = []

    def record(epoch, model):
        seen.append((epoch, model.epochs_done_, model.W_.copy(), model.b_.copy()))

    model = RBM(5, epochs=6, batch_size=100, init_std=0.05, random_state=3,
                visible_bias_init="zero").fit(train, checkpoints=[2, 6, 2], callback=record)
    assert [s[0] for s in seen] == [0, 2, 6]
    assert [s[1] for s in seen] == [0, 2, 6]
    W0, b0 = seen[0][2], seen[0][3]
    assert W0.shape == (16, 5) and W0.dtype == np.float32
    assert_array_equal(b0, 0.0)
    assert 0.03 < W0.std() < 0.07
    assert not np.array_equal(W0, model.W_)
    assert_array_equal(seen[-1][2], model.W_)
    assert model.n_updates_ == 6 * 3


def test_anchor_sites_fill_the_sublattices_class_by_class():
    from workers.rbm.training import anchor_sites

    r, c = np.divmod(np.arange(64), 8)
    for n_h, expected in [(16, (r % 2 == 0) & (c % 2 == 0)), (32, (r + c) % 2 == 0),
                          (64, np.ones(64, bool))]:
        sites = anchor_sites(64, n_h)
        assert len(set(sites.tolist())) == n_h
        assert_array_equal(np.isin(np.arange(64), sites), expected)
    assert_array_equal(np.bincount(anchor_sites(64, 128), minlength=64), 2)  # beyond N: repeats
    assert_array_equal(anchor_sites(10, 5), [0, 2, 4, 6, 8])  # not an even square: spread


def test_site_start_anchors_each_unit_on_its_site(split_data):
    from workers.rbm.training import SITE_WEIGHT, anchor_sites

    train, starts = split_data[0][:100], {}
    for init in ("gaussian", "site"):
        RBM(8, epochs=0, init=init, random_state=4).fit(
            train, callback=lambda e, m: starts.update({init: m.W_.copy()}))
    jump = starts["site"] - starts["gaussian"]  # the same Gaussian draw underneath
    sites = anchor_sites(16, 8)
    assert_allclose(jump[sites, np.arange(8)], SITE_WEIGHT, rtol=1e-6)
    jump[sites, np.arange(8)] = 0
    assert_array_equal(jump, 0)
    assert_array_equal(np.isin(np.arange(16), sites).reshape(4, 4), (np.add.outer(range(4), range(4)) % 2) == 0)


def test_visible_bias_initialisation_is_recorded(split_data):
    train = split_data[0]
    seen = {}
    RBM(3, epochs=0, random_state=0).fit(train, callback=lambda e, m: seen.update(a=m.a_.copy()))
    # p(v_i = +1) = sigmoid(2 a_i) reproduces the data means (pseudo-count 1)
    p = ((train > 0).sum(axis=0) + 1) / (len(train) + 2)
    assert_allclose(expit(2 * seen["a"]), p, rtol=1e-5)
    assert RBM(3, epochs=0, visible_bias_init="zero").fit(train).a_.max() == 0


def test_from_params_round_trip(split_data):
    train = split_data[0][:300]
    model = RBM(4, epochs=2, random_state=5).fit(train)
    clone = RBM.from_params(model.W_.ravel().reshape(16, 4).tolist(), list(model.a_),
                            list(model.b_))
    assert_array_equal(clone.free_energy(train), model.free_energy(train))
    assert clone.get_params()["n_hidden"] == 4
    assert clone.set_params(k=3) is clone and clone.k == 3


@pytest.mark.parametrize("bad, match", [
    (dict(method="sgd"), "method"), (dict(k=0), "k must"), (dict(momentum=1.0), "momentum"),
    (dict(lr_schedule="cosine"), "lr_schedule"), (dict(n_hidden="N/4"), "n_hidden"),
    (dict(learning_rate=0), "learning_rate"), (dict(visible_bias_init="mean"), "visible_bias"),
    (dict(init="random"), "init must"),
])
def test_invalid_settings_are_rejected(split_data, bad, match):
    params = dict(n_hidden=4, epochs=1)
    params.update(bad)
    with pytest.raises(ValueError, match=match):
        RBM(**params).fit(split_data[0][:50])


def test_invalid_data_and_checkpoints_are_rejected(split_data):
    with pytest.raises(ValueError, match="-1 and \\+1"):
        RBM(4).fit(np.zeros((10, 16), dtype=np.int8))
    with pytest.raises(ValueError, match="checkpoints"):
        RBM(4, epochs=2).fit(split_data[0][:50], checkpoints=[3])
    with pytest.raises(RuntimeError, match="fit"):
        RBM(4).free_energy(split_data[0][:5])


def test_sampling_casts_float64_parameters_to_the_kernels_dtype():
    # parameters set by hand as float64 (not through from_params) must not reach the float32
    # kernels as they are: the draws equal those of the float32 model
    model = tiny_model(n_v=6, n_h=3, seed=8)
    expected = model.sample(50, 4, np.random.default_rng(2))
    model.a_, model.b_ = model.a_.astype(np.float64), model.b_.astype(np.float64)
    model.W_ = np.asfortranarray(model.W_.astype(np.float64))
    assert_array_equal(model.sample(50, 4, np.random.default_rng(2)), expected)
    assert_array_equal(model.gibbs(expected[:50], 2, np.random.default_rng(3)),
                       tiny_model(n_v=6, n_h=3, seed=8).gibbs(expected[:50], 2, np.random.default_rng(3)))


def _two_sector_model():
    """6 spins, two hidden units that each favour one fully aligned sector, of unequal strength
    (so that the hidden units' part of F(v) - F(-v) does not cancel, 1.5 at the aligned states)
    and a weak visible bias toward -1 that nearly balances it (p(m < 0) = 0.44): a bimodal
    p(v) whose sectors block Gibbs sampling does not cross in a few dozen steps."""
    W = np.zeros((6, 2))
    W[:, 0], W[:, 1] = 2.5, -2.0
    return RBM.from_params(W, np.full(6, -0.1), np.array([-7.0, -5.5]))


def _sector_counts(draws):
    return np.bincount(((draws > 0) * (1 << np.arange(draws.shape[1]))).sum(axis=1), minlength=64)


def test_flip_moves_sample_the_exact_marginal_across_sectors():
    model = _two_sector_model()
    V = states(6, True)
    log_q = -model.free_energy(V)
    p = np.exp(log_q - logsumexp(log_q))
    assert 0.3 < p[V.sum(1) < 0].sum() < 0.6  # both sectors carry weight
    x = V.astype(float) @ model.W_.astype(float)
    b = model.b_.astype(float)
    hidden_part = np.logaddexp(0, b + x).sum(1) - np.logaddexp(0, b - x).sum(1)
    assert np.abs(hidden_part).max() > 1.0  # the flip's acceptance depends on the hidden layer
    init = np.ones((20000, 6), dtype=np.int8)  # every chain starts in the + sector
    draws = model.sample(20000, 1, np.random.default_rng(11), init=init, burn_in=20,
                         flip_moves=True)
    keep = p > 1e-4
    counts = _sector_counts(draws)
    assert chisquare(counts[keep], counts[keep].sum() * p[keep] / p[keep].sum()).pvalue > 1e-3
    assert 0.0 < model.sample_flip_rate_ < 1.0
    # power: without the flip moves the chains stay where they started
    stuck = model.sample(20000, 1, np.random.default_rng(11), init=init, burn_in=20)
    assert np.mean(stuck.sum(axis=1) < 0) < 0.05  # against about 0.4 in equilibrium
    counts = _sector_counts(stuck)
    assert chisquare(counts[keep], counts[keep].sum() * p[keep] / p[keep].sum()).pvalue < 1e-10


def test_checkpoints_inside_the_averaging_window_see_the_mean_so_far(split_data):
    # one update per epoch (batch = all rows), 4 epochs, averaging = 0.5: the window is the last
    # two updates. The training trajectory does not depend on the averaging, so the averaged
    # run's checkpoints are the plain run's iterates I1, I2, I3 and then (I3 + I4) / 2.
    train = split_data[0][:300]
    kw = dict(n_hidden=4, method="pcd", epochs=4, batch_size=300, random_state=9)
    plain, avg = {}, {}
    RBM(**kw).fit(train, checkpoints=[1, 2, 3, 4], callback=lambda e, m: plain.__setitem__(e, m.W_.copy()))
    model = RBM(averaging=0.5, **kw).fit(train, checkpoints=[1, 2, 3, 4],
                                         callback=lambda e, m: avg.__setitem__(e, m.W_.copy()))
    for e in (1, 2, 3):
        assert_array_equal(avg[e], plain[e])
    assert_allclose(avg[4], 0.5 * (plain[3] + plain[4]), rtol=1e-6, atol=1e-8)
    assert not np.allclose(avg[4], plain[4])
    assert_array_equal(model.W_, avg[4])
