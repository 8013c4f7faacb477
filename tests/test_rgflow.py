"""RG flows: majority-rule block spins, temperature matching, stacked RBMs, the RBM flow."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2 as chi2_dist

from workers.exact import kaufman
from workers.measures.free_energy import bond_rbm
from workers.ising.simulate import simulate
from workers.rbm.model import RBM
from workers.rg.blockspin import (blockspin_levels, configuration_observables, majority_rule,
                            match_temperature, match_temperature_joint)
from workers.rg.stacked import field_extent, projected_fields, rbm_flow, train_stack


def checkerboard(L):
    r, c = np.indices((L, L))
    return np.where((r + c) % 2 == 0, 1, -1).astype(np.int8)


def majority_reference(X, b, rng):
    """Slow reference: loop over blocks in C order; ties take the coins in that order."""
    n, L, _ = X.shape
    Lc = L // b
    sums = np.zeros((n, Lc, Lc), int)
    for k in range(n):
        for R in range(Lc):
            for C in range(Lc):
                sums[k, R, C] = sum(int(X[k, b * R + r, b * C + c])
                                    for r in range(b) for c in range(b))
    coins = 2 * rng.integers(0, 2, size=int(np.sum(sums == 0)), dtype=np.int8) - 1
    out, t = np.zeros((n, Lc, Lc), np.int8), 0
    for k in range(n):
        for R in range(Lc):
            for C in range(Lc):
                if sums[k, R, C] == 0:
                    out[k, R, C], t = coins[t], t + 1
                else:
                    out[k, R, C] = 1 if sums[k, R, C] > 0 else -1
    return out


# --- majority rule ------------------------------------------------------------------------

@pytest.mark.parametrize("b", [2, 3, 4])
def test_uniform_configurations_stay_uniform(b):
    L = 12
    X = np.stack([np.ones((L, L), np.int8), -np.ones((L, L), np.int8)])
    out = majority_rule(X, b, np.random.default_rng(0))
    assert out.shape == (2, L // b, L // b) and out.dtype == np.int8
    assert np.all(out[0] == 1) and np.all(out[1] == -1)


def test_checkerboard_ties_are_fair_random_and_seeded():
    L, n = 16, 200
    X = np.broadcast_to(checkerboard(L), (n, L, L))
    out = majority_rule(X, 2, np.random.default_rng(1))
    assert out.dtype == np.int8 and np.all(np.abs(out) == 1)
    n_coins = out.size  # every 2 x 2 block of a checkerboard sums to 0
    ups = int(np.sum(out == 1))
    z = (ups - n_coins / 2) / np.sqrt(n_coins / 4)
    assert abs(z) < 3, f"tie-break not fair: {ups} up of {n_coins}, z = {z:.2f}"
    assert_array_equal(out, majority_rule(X, 2, np.random.default_rng(1)))
    other = majority_rule(X, 2, np.random.default_rng(2))
    assert np.mean(other != out) > 0.4  # independent coins differ about half the time


def test_three_by_three_majority_and_hand_made_four_by_four():
    X = -np.ones((1, 3, 3), np.int8)
    X[0].flat[[0, 2, 4, 6, 8]] = 1  # 5 up, 4 down
    assert majority_rule(X, 3, np.random.default_rng(0))[0, 0, 0] == 1
    assert majority_rule(-X, 3, np.random.default_rng(0))[0, 0, 0] == -1
    V = np.array([[1, 1, -1, -1],
                  [1, -1, -1, -1],
                  [1, -1, 1, 1],
                  [-1, -1, 1, -1]], np.int8)
    # block sums: top-left 2, top-right -4, bottom-left -2, bottom-right 2 (no ties)
    expected = np.array([[1, -1], [-1, 1]], np.int8)
    assert_array_equal(majority_rule(V[None], 2, np.random.default_rng(0))[0], expected)
    assert_array_equal(majority_rule(V.reshape(1, 16), 2, np.random.default_rng(0))[0], expected)


@pytest.mark.parametrize("b", [2, 3])
def test_majority_rule_matches_loop_reference(b):
    X = np.where(np.random.default_rng(5).random((7, 12, 12)) < 0.5, 1, -1).astype(np.int8)
    fast = majority_rule(X, b, np.random.default_rng(9))
    assert_array_equal(fast, majority_reference(X, b, np.random.default_rng(9)))


def test_coarse_graining_keeps_count_and_int8_spins_and_validates():
    rng = np.random.default_rng(3)
    X = np.where(rng.random((50, 32 * 32)) < 0.3, 1, -1).astype(np.int8)
    levels = blockspin_levels(X, 2, np.random.default_rng(4))
    assert [lv.shape for lv in levels] == [(50, L, L) for L in (32, 16, 8, 4)]
    assert_array_equal(levels[0].reshape(50, -1), X)
    for lv in levels:
        assert lv.dtype == np.int8 and np.all(np.abs(lv) == 1)
    assert [lv.shape[1] for lv in blockspin_levels(X, 2, np.random.default_rng(4),
                                                    min_size=8)] == [32, 16, 8]
    assert [lv.shape[1] for lv in blockspin_levels(np.ones((2, 27, 27)), 3,
                                                    np.random.default_rng(0), min_size=3)] \
        == [27, 9, 3]
    with pytest.raises(ValueError, match="divid"):
        majority_rule(X, 3, rng)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        majority_rule(np.zeros((2, 4, 4)), 2, rng)


# --- observables of configurations ------------------------------------------------------

def test_configuration_observables_exact_values():
    up = np.ones((4, 8, 8), np.int8)
    obs = configuration_observables(np.concatenate([up, -up]), T=1.0)
    assert obs["e"] == -2.0 and obs["m_abs"] == 1.0 and obs["L"] == 8 and obs["n"] == 8
    assert_allclose(obs["binder"], 2.0 / 3.0)
    X = np.where(np.random.default_rng(0).random((400, 6, 6)) < 0.5, 1, -1).astype(np.int8)
    obs = configuration_observables(X.reshape(400, 36), T=2.0)
    e = np.array([-sum(x[r, c] * (x[r, (c + 1) % 6] + x[(r + 1) % 6, c])
                       for r in range(6) for c in range(6)) for x in X.astype(int)]) / 36
    m = X.reshape(400, -1).mean(axis=1)
    assert_allclose([obs["e"], obs["m_abs"]], [e.mean(), np.abs(m).mean()])
    assert_allclose(obs["binder"], 1 - np.mean(m ** 4) / (3 * np.mean(m ** 2) ** 2), atol=0.05)
    # independent rows: the error is about the naive sqrt(var / n)
    assert 0.7 < obs["e_err"] / (e.std(ddof=1) / np.sqrt(400)) < 1.4
    # strictly alternating rows (tau_int < 0 by Sokal's estimate) still get a finite error
    alt = np.where(np.arange(400)[:, None, None] % 2 == 0, X[:1], np.ones((1, 6, 6), np.int8))
    obs = configuration_observables(alt, T=2.0)
    assert np.isfinite(obs["e_err"]) and np.isfinite(obs["m_abs_err"]) and obs["e_err"] > 0


# --- temperature matching ----------------------------------------------------------------

def test_match_temperature_recovers_known_T_and_returns_nan_outside():
    T = np.linspace(1.0, 4.0, 31)
    curve = -2.0 + 0.5 * T  # linear: interpolation is exact
    T_eff, err = match_temperature(-2.0 + 0.5 * 2.345, 0.01, T, curve)
    assert_allclose(T_eff, 2.345, rtol=1e-12)
    assert_allclose(err, 0.01 / 0.5, rtol=1e-12)
    T_dec, _ = match_temperature(2.0 - 0.5 * 2.345, 0.01, T[::-1], (2.0 - 0.5 * T)[::-1])
    assert_allclose(T_dec, 2.345, rtol=1e-12)  # decreasing and unsorted input
    assert np.isnan(match_temperature(0.5, 0.01, T, curve)[0])      # above the range
    assert np.isnan(match_temperature(-1.6, 0.01, T, curve)[1])     # below the range
    flat = np.where(T < 2.0, -1.0, 0.0)
    assert np.isnan(match_temperature(0.0, 0.01, T, flat)[0])       # on a plateau
    assert np.isnan(match_temperature(0.0, 0.01, T, flat, method="pchip")[0])
    assert np.isnan(match_temperature(0.5, 0.01, T, curve, method="pchip")[0])
    assert_allclose(match_temperature(-2.0 + 0.5 * 2.345, 0.01, T, curve, method="pchip"),
                    (2.345, 0.02), rtol=1e-9)  # PCHIP reproduces a straight line
    bump = np.where(T < 2.0, 0.1 * T, np.where(T < 3.0, 0.4 - 0.1 * T, 0.1 * T - 0.2))
    assert np.isnan(match_temperature(0.15, 0.001, T, bump)[0])      # three crossings
    assert np.isfinite(match_temperature(0.15, 0.001, T[T < 2.0], bump[T < 2.0])[0])
    noisy_flat = 0.6666 + 1e-4 * np.random.default_rng(0).standard_normal(T.size)
    assert np.isnan(match_temperature(0.6666, 1e-4, T, noisy_flat, np.full(T.size, 1e-4))[0])


@pytest.mark.parametrize("method", ["linear", "pchip"])
def test_match_temperature_error_bar_is_calibrated(method):
    """z = (T_eff - T0) / T_err over synthetic noisy curves: mean 0, sum z^2 ~ chi2(n).

    The truth is a straight line, which both interpolants reproduce, so z measures the error
    propagation alone (PCHIP's slope limiter makes it non-linear in the curve's noise)."""
    rng = np.random.default_rng(11)
    T = np.linspace(1.5, 3.5, 11)
    T0, n = 2.43, 1000
    truth = lambda t: -1.0 + 0.6 * t  # noqa: E731
    sigma_c = np.linspace(0.005, 0.02, T.size)
    z = np.empty(n)
    for k in range(n):
        curve = truth(T) + sigma_c * rng.standard_normal(T.size)
        value = truth(T0) + 0.01 * rng.standard_normal()
        T_eff, err = match_temperature(value, 0.01, T, curve, sigma_c, method=method)
        z[k] = (T_eff - T0) / err
    assert abs(z.mean()) < 3 / np.sqrt(n)
    p = chi2_dist.sf(np.sum(z ** 2), n)
    assert 1e-3 < p < 1 - 1e-3, f"sum z^2 = {np.sum(z ** 2):.0f} for n = {n}"


def test_pchip_error_is_the_first_order_propagation():
    """Against a slow reference: the gradient of T_eff in every curve point and the value,
    by finite differences of the whole match."""
    T = np.linspace(1.5, 3.5, 9)
    curve = np.tanh(2.0 * (T - 2.4)) + 0.05 * np.sin(3 * T)
    s_c = np.linspace(0.01, 0.03, T.size)
    value, s_v = np.tanh(2.0 * (2.55 - 2.4)), 0.02
    T_eff, err = match_temperature(value, s_v, T, curve, s_c, method="pchip")
    h = 1e-7

    def at(c, v):
        return match_temperature(v, 0.0, T, c, None, method="pchip")[0]

    var = ((at(curve, value + h) - at(curve, value - h)) / (2 * h) * s_v) ** 2
    for j in range(T.size):
        up, down = curve.copy(), curve.copy()
        up[j] += h
        down[j] -= h
        var += ((at(up, value) - at(down, value)) / (2 * h) * s_c[j]) ** 2
    assert_allclose(err, np.sqrt(var), rtol=1e-4)
    assert_allclose(T_eff, at(curve, value))


def test_pchip_follows_curvature_that_linear_interpolation_misses():
    T = np.linspace(1.5, 3.5, 9)
    curve = np.tanh(2.0 * (T - 2.4))
    for T0 in (1.7, 2.61, 3.3):
        value = np.tanh(2.0 * (T0 - 2.4))
        T_lin, err_lin = match_temperature(value, 0.01, T, curve)
        T_cub, err_cub = match_temperature(value, 0.01, T, curve, method="pchip")
        assert abs(T_cub - T0) < 0.2 * abs(T_lin - T0)
        if T0 == 2.61:  # on the steep part the linear bias exceeds the error bar
            assert abs(T_lin - T0) > err_lin
    with pytest.raises(ValueError, match="method"):
        match_temperature(0.0, 0.01, T, curve, method="cubic")


def test_match_temperature_joint_recovers_T_and_is_calibrated():
    T = np.linspace(1.5, 4.0, 26)
    curves = np.array([-2.0 + 0.4 * T, 1.5 - 0.3 * T])
    T0 = 2.71
    exact = match_temperature_joint([-2.0 + 0.4 * T0, 1.5 - 0.3 * T0], [0.01, 0.02], T, curves)
    assert_allclose(exact[0], T0, rtol=1e-12)
    assert_allclose(exact[2], 0.0, atol=1e-20)
    assert_allclose(exact[1], 1 / np.sqrt(0.4 ** 2 / 0.01 ** 2 + 0.3 ** 2 / 0.02 ** 2))
    rng = np.random.default_rng(12)
    n, z, chi2 = 1000, [], []
    for _ in range(n):
        v = np.array([-2.0 + 0.4 * T0, 1.5 - 0.3 * T0]) + [0.01, 0.02] * rng.standard_normal(2)
        T_eff, err, c2 = match_temperature_joint(v, [0.01, 0.02], T, curves)
        z.append((T_eff - T0) / err)
        chi2.append(c2)
    z = np.asarray(z)
    assert abs(z.mean()) < 3 / np.sqrt(n)
    assert 1e-3 < chi2_dist.sf(np.sum(z ** 2), n) < 1 - 1e-3
    assert 1e-3 < chi2_dist.sf(np.sum(chi2), n) < 1 - 1e-3  # chi2_min ~ chi2(n_obs - 1 = 1)
    assert np.isnan(match_temperature_joint([-3.0, 2.0], [0.01, 0.02], T, curves)[0])
    assert np.isnan(match_temperature_joint([-1.0, 0.7], [0.0, 0.02], T, curves)[0])


def test_match_temperature_joint_with_noisy_curves_is_calibrated():
    """Curve noise 5-10 % of the change across a grid interval, as for MC energy curves."""
    T = np.linspace(1.5, 4.0, 11)
    truth = np.array([-2.0 + 0.4 * T, 1.5 - 0.3 * T])
    s_c = np.array([np.full(T.size, 0.005), np.linspace(0.004, 0.008, T.size)])
    T0, v0, s_v = 2.71, np.array([-2.0 + 0.4 * 2.71, 1.5 - 0.3 * 2.71]), np.array([0.01, 0.02])
    rng = np.random.default_rng(13)
    n, z = 1000, []
    for _ in range(n):
        curves = truth + s_c * rng.standard_normal(truth.shape)
        T_eff, err, _ = match_temperature_joint(v0 + s_v * rng.standard_normal(2), s_v, T,
                                                curves, s_c)
        z.append((T_eff - T0) / err)
    z = np.asarray(z)
    assert abs(z.mean()) < 3 / np.sqrt(n)
    assert 1e-3 < chi2_dist.sf(np.sum(z ** 2), n) < 1 - 1e-3


@pytest.mark.parametrize("method", ["linear", "pchip"])
@pytest.mark.parametrize("node", [0, 3, 7])
def test_a_value_equal_to_a_grid_point_matches_that_point(method, node):
    """The flow's step 0 matched against its own curve: the value is the curve's node exactly.
    The curve of a measured L = 64 flow, where PCHIP gave -1.1e-16 at the last node and the
    root finder stopped the task on 'f(a) and f(b) must have different signs'."""
    T = np.array([2.0, 2.2, 2.25, 2.3, 2.4, 2.6, 2.8, 3.2])
    c = np.array([-1.738530029296875, -1.541863525390625, -1.47429541015625, -1.35501171875,
                  -1.207899658203125, -1.0271044921875, -0.90740771484375, -0.74390087890625])
    s = np.array([0.0060, 0.0037, 0.0034, 0.0073, 0.0024, 0.00097, 0.00076, 0.00059])
    T_eff, err = match_temperature(c[node], s[node], T, c, s, method=method)
    assert T_eff == T[node] and 0 < err < 0.05


def test_level_zero_matches_its_own_temperature():
    """configuration_observables + match_temperature against Kaufman's exact u(L, T)."""
    grid = np.linspace(1.2, 4.0, 281)
    for T, seed in ((1.8, 21), (3.0, 22)):
        run = simulate(16, T, "wolff", 200, 400, 3, np.random.SeedSequence(seed))
        obs = configuration_observables(run.samples, T)
        T_eff, err = match_temperature(obs["e"], obs["e_err"], grid, kaufman(16, grid)["u"])
        assert abs(T_eff - T) / err < 3, (T, T_eff, err)


# --- the block-spin flow ------------------------------------------------------------------

def mc_curve(L, temperatures, seed, key="e"):
    """MC curve of one observable at size L (short Wolff runs, thinned)."""
    vals, errs = [], []
    for j, T in enumerate(temperatures):
        run = simulate(L, float(T), "wolff", 100, 300, 2, np.random.SeedSequence([seed, j]))
        obs = configuration_observables(run.samples, T)
        vals.append(obs[key])
        errs.append(obs[key + "_err"])
    return np.array(vals), np.array(errs)


def test_blockspin_flow_runs_away_from_the_critical_point():
    """Level 1 of L = 32 samples, read on the L = 16 MC energy curve: T' < T below Tc (flow
    to the ordered fixed point), T' > T above (flow to infinite temperature)."""
    grid = np.linspace(1.3, 4.9, 13)
    curve, curve_err = mc_curve(16, grid, seed=100)
    assert np.all(np.diff(curve) > 0)
    for T, seed, sign in ((1.8, 31, -1), (3.0, 32, +1)):
        run = simulate(32, T, "wolff", 200, 300, 4, np.random.SeedSequence(seed))
        levels = blockspin_levels(run.samples, 2, np.random.default_rng(seed))
        obs = configuration_observables(levels[1], T)
        T1, err = match_temperature(obs["e"], obs["e_err"], grid, curve, curve_err)
        assert np.isfinite(T1)
        z = (T1 - T) / err
        assert sign * z > 2, f"T = {T}: T' = {T1:.3f} +- {err:.3f}"


# --- stacked RBMs -------------------------------------------------------------------------

def test_projected_fields_are_products_of_weights():
    W1 = np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]])
    W2 = np.array([[2.0, 0.0, 1.0], [-1.0, 1.0, 0.0]])
    W3 = np.array([[1.0], [2.0], [-1.0]])
    F1, F2, F3 = projected_fields([W1, W2, W3])
    assert_array_equal(F1, W1)
    assert_array_equal(F2, [[0.0, 2.0, 1.0], [1.0, -1.0, 0.0], [5.0, 1.0, 3.0]])
    assert_array_equal(F3, F2 @ W3)
    with pytest.raises(ValueError, match="rows"):
        projected_fields([W1, W3])


def test_field_extent_definitional_values():
    L = 8
    delta = np.zeros((L * L, 1))
    delta[3 * L + 5] = 1.0
    uniform = np.ones((L * L, 1))
    F = np.hstack([delta, -2.0 * uniform])
    for b, (r0, c0) in ((2, (0, 0)), (3, (6, 7)), (4, (2, 5))):  # (6, 7): wraps around
        block = np.zeros((L, L))
        block[np.ix_((r0 + np.arange(b)) % L, (c0 + np.arange(b)) % L)] = 0.7
        F = np.hstack([F, block.reshape(-1, 1)])
    ext = field_extent(F, L)
    assert ext.shape == (5,)
    assert_allclose(ext, [0.0, np.sqrt((L * L - 1) / 6)]
                    + [np.sqrt((b * b - 1) / 6) for b in (2, 3, 4)], atol=1e-12)
    assert_allclose(field_extent(np.ones(25), 5), np.sqrt((25 - 1) / 6))  # odd L
    # the uniform field is the maximum; antipodal spikes are not wider than it
    rand = np.random.default_rng(0).standard_normal((L * L, 200)) ** 5
    assert np.all(field_extent(rand, L) <= ext[1] + 1e-12)
    spikes = np.zeros(L * L)
    spikes[[0, L // 2]] = 1.0
    assert_allclose(field_extent(spikes, L), L / 4)
    assert np.isnan(field_extent(np.zeros((L * L, 1)), L)[0])


def test_field_extent_matches_brute_force_over_real_centres():
    L = 6
    F = np.random.default_rng(4).standard_normal((L * L, 5)) ** 3
    p = (F ** 2 / np.sum(F ** 2, axis=0)).reshape(L, L, -1)
    centres = np.linspace(0, L, 6001)
    d = np.abs(np.arange(L)[:, None] - centres[None, :]) % L
    d2 = np.minimum(d, L - d) ** 2  # (L, n_centres)
    brute = np.array([np.min(p[:, :, j].sum(axis=1) @ d2) + np.min(p[:, :, j].sum(axis=0) @ d2)
                      for j in range(F.shape[1])])
    assert_allclose(field_extent(F, L) ** 2, brute, atol=1e-5)


def test_train_stack_shapes_sampled_inputs_and_reproducibility():
    L, n = 4, 300
    V = simulate(L, 2.5, "wolff", 50, n, 2, np.random.SeedSequence(5)).samples
    kw = {"epochs": 3, "batch_size": 50, "learning_rate": 0.05}
    out = train_stack(V, [8, 4], kw, np.random.default_rng(7), checkpoints=[2, 3])
    assert len(out["rbms"]) == 2 and len(out["params"]) == 2
    assert [d.shape for d in out["data"]] == [(n, 16), (n, 8), (n, 4)]
    for d in out["data"]:
        assert d.dtype == np.int8 and np.all(np.abs(d) == 1)
    assert [sorted(p) for p in out["params"]] == [[0, 2, 3], [0, 2, 3]]
    assert out["rbms"][1].W_.shape == (8, 4)
    # layer 2's input is h ~ p(h | v) of layer 1 (not thresholded): in every decile of
    # p(h = 1 | v) the count of +1 matches sum p within its binomial noise (chi-square)
    ph = out["rbms"][0].hidden_proba(V).ravel()
    up = (out["data"][1].ravel() == 1)
    bins = np.searchsorted(np.quantile(ph, np.linspace(0, 1, 11)[1:-1]), ph)
    chi2 = sum((up[bins == k].sum() - ph[bins == k].sum()) ** 2
               / np.sum(ph[bins == k] * (1 - ph[bins == k])) for k in range(10))
    assert chi2_dist.sf(chi2, 10) > 1e-3, chi2
    fields = projected_fields([r.W_ for r in out["rbms"]])
    assert [f.shape for f in fields] == [(16, 8), (16, 4)]
    assert [field_extent(f, L).shape for f in fields] == [(8,), (4,)]
    again = train_stack(V, [8, 4], kw, np.random.default_rng(7), checkpoints=[2, 3])
    assert_array_equal(again["rbms"][1].W_, out["rbms"][1].W_)
    assert_array_equal(again["data"][2], out["data"][2])
    with pytest.raises(ValueError, match="n_hidden"):
        train_stack(V, [8], {"n_hidden": 3}, np.random.default_rng(0))


# --- the RBM flow --------------------------------------------------------------------------

def test_rbm_flow_equals_manual_gibbs_steps():
    rng = np.random.default_rng(0)
    model = RBM.from_params(rng.normal(size=(9, 5)), rng.normal(size=9), rng.normal(size=5))
    V0 = np.where(rng.random((20, 9)) < 0.5, 1, -1)
    flow = rbm_flow(model, V0, 3, np.random.default_rng(8))
    assert len(flow) == 4 and all(f.shape == (20, 9) and f.dtype == np.int8 for f in flow)
    assert_array_equal(flow[0], V0)
    r, v = np.random.default_rng(8), V0
    for k in range(1, 4):
        v = model.sample_visible(model.sample_hidden(v, r), r)
        assert_array_equal(flow[k], v)
    assert len(rbm_flow(model, V0, 0, rng)) == 1


def test_rbm_flow_of_the_exact_bond_rbm_keeps_the_ising_energy():
    """bond_rbm's marginal is the Ising distribution, so Gibbs steps from Ising samples stay
    at Kaufman's u(L, T); a wrong step (e.g. p(v = +1 | h) without the factor 2) drifts."""
    L, T = 6, 2.6
    W, a, b = bond_rbm(L, T)
    model = RBM.from_params(W, a, b)
    V0 = simulate(L, T, "wolff", 100, 1000, 2, np.random.SeedSequence(9)).samples
    flow = rbm_flow(model, V0, 4, np.random.default_rng(10))
    u = kaufman(L, T)["u"]
    for step in (1, 4):
        obs = configuration_observables(flow[step], T)
        assert abs(obs["e"] - u) / obs["e_err"] < 3, (step, obs["e"], u)
