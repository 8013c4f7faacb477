"""Histogram reweighting and block bootstrap.

Exact: on the L = 4 torus (all 2^16 configurations enumerated here), single- and
multiple-histogram reweighting of the exact energy distributions reproduce the exact e, C, <m^2>
and lnZ differences at temperatures between the sampled ones. Statistical: the same from i.i.d.
draws, and from the project's own Metropolis chains, within bootstrap error bars; Sokal's tau on
an AR(1) chain. Behavioural: blocking of multi-chain series.
"""

import numpy as np
import pytest

from analysis.resampling import BlockedHistogram, blocked_histogram, bootstrap_weights, integrated_time
from analysis.reweighting import multi_histogram, reweight_single
from analysis.thermodynamics import bootstrap_observables
from analysis.transition import reweighted_peaks
from workers.exact import brute_force, kaufman_c_peak

L, N = 4, 16


@pytest.fixture(scope="module")
def enumeration():
    """Total energy E and magnetization M of every configuration of the 4 x 4 torus."""
    codes = np.arange(2**N, dtype=np.int64)
    s = (1 - 2 * ((codes[:, None] >> np.arange(N)) & 1)).reshape(-1, L, L)
    E = -(s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)).sum(axis=(1, 2))
    return E, s.sum(axis=(1, 2))


def _boltzmann(E, T):
    w = np.exp(-(E - E.min()) / T)
    return w / w.sum()


def _exact_histogram(enumeration, T, n):
    """A BlockedHistogram whose counts are exactly n P(E) (one block, no noise)."""
    E, M = enumeration
    p = _boltzmann(E, T) * n
    levels, idx = np.unique(E, return_inverse=True)
    H = np.bincount(idx, weights=p)
    m = np.abs(M) / N
    S = np.stack([np.bincount(idx, weights=p * m**k) for k in (1, 2, 4)], axis=-1)
    return BlockedHistogram(L, T, levels, H[None], S[None], 0.5, 1, False)


def _iid_series(enumeration, T, n, rng):
    E, M = enumeration
    pick = rng.choice(E.size, size=n, p=_boltzmann(E, T))
    return E[pick] / N, M[pick] / N


def test_single_histogram_is_exact_on_exact_distribution(enumeration):
    h = _exact_histogram(enumeration, 2.4, 1e6)
    targets = np.array([2.1, 2.25, 2.4, 2.6])
    got = reweight_single(h, targets)
    exact = brute_force(L, targets)
    np.testing.assert_allclose(got["e"], exact["u"], rtol=1e-12)
    np.testing.assert_allclose(got["C"], exact["c"], rtol=1e-10)
    np.testing.assert_allclose(got["m2"], exact["m2"], rtol=1e-10)
    np.testing.assert_allclose(got["m4"], exact["m4"], rtol=1e-10)


def test_multiple_histogram_is_exact_on_exact_distributions(enumeration):
    temps = [1.8, 2.2, 2.6, 3.2]
    hists = [_exact_histogram(enumeration, T, n) for T, n in zip(temps, [1e5, 3e4, 7e4, 2e4])]
    mh = multi_histogram(hists)
    targets = np.array([2.0, 2.35, 2.9])
    got = mh.observables(targets)
    exact = brute_force(L, targets)
    np.testing.assert_allclose(got["e"], exact["u"], rtol=1e-9)
    np.testing.assert_allclose(got["C"], exact["c"], rtol=1e-8)
    np.testing.assert_allclose(got["binder"], 1 - exact["m4"] / (3 * exact["m2"] ** 2), rtol=1e-8)
    lnz = brute_force(L, np.array(temps))["lnZ"]
    np.testing.assert_allclose(mh.lnZ, lnz - lnz[0], atol=1e-8)
    np.testing.assert_allclose(mh.log_partition(targets), brute_force(L, targets)["lnZ"] - lnz[0], atol=1e-8)


def test_reweighting_iid_samples_within_bootstrap_errors(enumeration):
    rng = np.random.default_rng(2024)
    temps = [2.0, 2.3, 2.6]
    hists = [blocked_histogram(*_iid_series(enumeration, T, 20000, rng), L, T) for T in temps]
    targets = np.array([2.15, 2.45])
    exact = brute_force(L, targets)
    mh = multi_histogram(hists)
    single = reweight_single(hists[0], targets[:1])
    reps_mh, reps_single = [], []
    for r in range(100):
        w = [bootstrap_weights(h.n_blocks, 2, rng)[0] for h in hists]
        reps_mh.append(multi_histogram(hists, w, mh.lnZ).observables(targets))
        reps_single.append(reweight_single(hists[0], targets[:1], w[0]))
    for key, ex in (("e", exact["u"]), ("C", exact["c"])):
        err = np.std([r[key] for r in reps_mh], axis=0, ddof=1)
        z = (mh.observables(targets)[key] - ex) / err
        assert np.all(np.abs(z) < 3), (key, z)
        err1 = np.std([r[key][0] for r in reps_single], ddof=1)
        assert abs(single[key][0] - ex[0]) / err1 < 3, key


def test_metropolis_chains_reweighted_peak_matches_kaufman():
    """Real correlated chains of the project's sampler; C peak of L = 4 against Kaufman."""
    from workers.ising.simulate import simulate

    rng = np.random.default_rng(5)
    hists = []
    for k, T in enumerate([2.0, 2.25, 2.5, 2.75, 3.0]):
        run = simulate(L, T, "metropolis", 500, 4000, 5, np.random.SeedSequence(11, spawn_key=(k,)))
        hists.append(blocked_histogram(run.e_series, run.m_series, L, T))
    peaks = reweighted_peaks(hists, rng, observables=("C",), n_boot=60, n_neighbours=4)
    t_exact, c_exact = kaufman_c_peak(L)
    multi = peaks[peaks["method"] == "multi"].iloc[0]
    assert not multi["at_edge"]
    assert abs(multi["T_peak"] - t_exact) / multi["T_peak_err"] < 3
    assert abs(multi["height"] - c_exact) / multi["height_err"] < 3
    table, _ = bootstrap_observables(hists, 60, rng)
    exact = brute_force(L, table["T"].to_numpy())
    z = (table["e"] - exact["u"]) / table["e_err"]
    assert np.all(np.abs(z) < 3.5), z


def test_sokal_tau_on_ar1():
    rng = np.random.default_rng(1)
    phi, n = 0.8, 200_000
    x = np.empty(n)
    x[0] = rng.standard_normal()
    noise = rng.standard_normal(n) * np.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    exact = (1 + phi) / (2 * (1 - phi))  # tau_int = 1/2 + sum_t phi^t
    tau = integrated_time(x)
    window = 5 * exact
    err = exact * np.sqrt(2 * (2 * window + 1) / n)  # Madras-Sokal
    assert abs(tau - exact) < 3 * err
    assert integrated_time(np.ones(10)) == 0.5


def test_chains_are_blocked_independently(enumeration):
    rng = np.random.default_rng(3)
    e, m = _iid_series(enumeration, 2.3, 6400, rng)
    chain = np.repeat(np.arange(64), 100)
    h = blocked_histogram(e, m, L, 2.3, chain=chain, block_length=25)
    assert h.n_blocks == 256 and h.n == 6400
    # chains in another order: the same blocks, permuted
    order = np.argsort(-chain, kind="stable")
    h2 = blocked_histogram(e[order], m[order], L, 2.3, chain=chain[order], block_length=25)
    np.testing.assert_array_equal(np.sort(h.counts, axis=0), np.sort(h2.counts, axis=0))
    np.testing.assert_allclose(reweight_single(h, 2.3)["C"], reweight_single(h2, 2.3)["C"], rtol=1e-12)
    with pytest.raises(ValueError, match="at least"):
        blocked_histogram(e[:10], m[:10], L, 2.3)


def test_block_bootstrap_error_bars_are_honest_on_correlated_chains():
    """40 independent Metropolis chains (L = 4, T = 2.3): pulls of e and C against the exact
    values must be unit normal; sum z^2 ~ chi2(40), two-sided 0.1% bounds."""
    from scipy import stats

    from workers.ising.simulate import simulate

    T, runs = 2.3, 40
    rng = np.random.default_rng(17)
    hists = []
    for k in range(runs):
        run = simulate(L, T, "metropolis", 300, 1000, 4, np.random.SeedSequence(99, spawn_key=(k,)))
        hists.append(blocked_histogram(run.e_series, run.m_series, L, T))
    assert hists[0].tau > 1  # the chains are correlated: naive errors would be too small
    table, _ = bootstrap_observables(hists, 100, rng)
    exact = brute_force(L, T)
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], runs)
    for key, ref in (("e", exact["u"]), ("C", exact["c"])):
        z = (table[key] - ref) / table[f"{key}_err"]
        assert lo < np.sum(z**2) < hi, (key, np.sum(z**2), lo, hi)


def test_load_histograms_reads_multichain_series(enumeration, tmp_path):
    """A series part with a chain column (multi-spin samplers) is blocked chain by chain."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.thermodynamics import load_histograms
    from contract.schemas import SCHEMAS

    rng = np.random.default_rng(8)
    e, m = _iid_series(enumeration, 2.3, 64 * 50, rng)
    chain = np.tile(np.arange(64), 50)  # rows interleaved across chains, as a sampler may store them
    step = np.repeat(np.arange(50), 64)
    n = e.size
    cols = {"task_id": ["00000000000000a1"] * n, "L": [L] * n, "T": [2.3] * n, "chain": chain, "step": step, "e": e, "m": m}
    table = pa.Table.from_arrays([pa.array(cols[f.name], type=f.type) for f in SCHEMAS["series"]],
                                 schema=SCHEMAS["series"])
    (tmp_path / "series" / f"L{L}").mkdir(parents=True)
    pq.write_table(table, tmp_path / "series" / f"L{L}" / "part-00000000000000a1.parquet")
    (tmp_path / "_tasks" / f"L{L}").mkdir(parents=True)
    (tmp_path / "_tasks" / f"L{L}" / "sample-00000000000000a1.json").write_text(json.dumps({"task_id": "00000000000000a1"}))
    hists = load_histograms(tmp_path)
    assert list(hists) == [L] and len(hists[L]) == 1
    h = hists[L][0]
    assert h.n == n and h.n_blocks >= 64  # every chain contributes; no block spans two chains
    direct = blocked_histogram(e, m, L, 2.3, chain=chain)
    np.testing.assert_allclose(reweight_single(h, 2.25)["C"], reweight_single(direct, 2.25)["C"], rtol=1e-12)


def _enumerate(size):
    n = size * size
    codes = np.arange(2**n, dtype=np.int64)
    s = (1 - 2 * ((codes[:, None] >> np.arange(n)) & 1)).reshape(-1, size, size)
    return -(s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)).sum(axis=(1, 2)), s.sum(axis=(1, 2))


def _exact_hist(size, T, E, M, n=1e6, blocks=1):
    p = _boltzmann(E, T) * n / blocks
    levels, idx = np.unique(E, return_inverse=True)
    H = np.bincount(idx, weights=p)
    m = np.abs(M) / size**2
    S = np.stack([np.bincount(idx, weights=p * m**k) for k in (1, 2, 4)], axis=-1)
    return BlockedHistogram(size, T, levels, np.repeat(H[None], blocks, 0), np.repeat(S[None], blocks, 0),
                            0.5, 1, False)


def test_reweighted_binder_crossing_is_exact_on_exact_distributions():
    """U4 of the 3 x 3 and 4 x 4 tori (every configuration enumerated) cross at one T; the
    multiple-histogram crossing of their exact energy distributions at grid temperatures lands
    on it, whichever grid, and every run within reach of the bracket is used."""
    from scipy import optimize

    from analysis.transition import binder_crossings_reweighted

    enum = {3: _enumerate(3), 4: _enumerate(4)}

    def u4(size, T):
        E, M = enum[size]
        p = _boltzmann(E, T)
        m = M / size**2
        return 1 - (p @ m**4) / (3 * (p @ m**2) ** 2)

    exact_cross = optimize.brentq(lambda t: u4(4, t) - u4(3, t), 1.0, 6.0, xtol=1e-12)
    for grid in (np.linspace(1.5, 5.5, 9), np.r_[np.linspace(1.5, 5.5, 5), exact_cross + np.array([-0.05, 0.03])]):
        hists = {L: [_exact_hist(L, t, *enum[L], blocks=4) for t in grid] for L in (3, 4)}
        out = binder_crossings_reweighted(hists, np.random.default_rng(0), n_boot=5).iloc[0]
        assert abs(out["T_cross"] - exact_cross) < 1e-6, (out["T_cross"], exact_cross)
        assert out["T_lo"] < exact_cross + 0.06 and out["T_hi"] > exact_cross - 0.06
        assert 0 < out["bracket_overlap"] <= 1 and out["n_runs"] >= 4
