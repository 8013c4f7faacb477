"""analysis.flow on synthetic rg_flow frames whose fixed points, end points and growth are known.

Exact: a noiseless linear flow T' - T0 = lam (T - T0) gives back T0 to rounding; projected
fields equal the matrix products. Statistical: over independent noisy copies of that flow the
fixed point's bootstrap error bar is honest (sum of z^2 against chi-square). Behavioural:
directions, censored steps, a stable fixed point that must not be reported as unstable,
end points of the RBM flow and the growth of receptive fields with depth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import exact_reference as exact
from analysis.flow import (blockspin_fixed_points, flow_steps, flow_summary, projected_fields,
                           rbmflow_endpoints, stacked_growth, uniform_extent, unstable_fixed_point)

TEMPS = np.round(np.linspace(1.5, 3.5, 15), 6)
_NAN = float("nan")


def _row(L, T, kind, level, size, **kw):
    base = {"task_id": f"flow{L}", "L": L, "T": T, "source_task": f"s{L}-{T}", "kind": kind, "level": level,
            "size": size, "T_eff": _NAN, "T_eff_err": _NAN, "e": _NAN, "e_err": _NAN, "m_abs": _NAN,
            "m_abs_err": _NAN, "binder": _NAN, "binder_err": _NAN, "extent": _NAN, "mean_alignment": _NAN}
    return {**base, **kw}


def _blockspin_frame(T0=2.3, lam=2.0, sigma=0.0, rng=None, L=16, temps=TEMPS, window=None):
    """Level 0 (T_eff = T) and level 1 (T' = T0 + lam (T - T0) + noise) of a block-spin flow.

    With ``window`` = (lo, hi), a T' outside it is NaN (the matcher's "outside the MC range")
    and the row's energy says on which side: e = T' stands in for a monotone e(T).
    """
    rows = []
    for T in temps:
        rows.append(_row(L, T, "blockspin", 0, L, T_eff=T, T_eff_err=sigma, e=T))
        t1 = T0 + lam * (T - T0) + (sigma * rng.standard_normal() if sigma else 0.0)
        inside = window is None or window[0] < t1 < window[1]
        rows.append(_row(L, T, "blockspin", 1, L // 2, T_eff=t1 if inside else _NAN,
                         T_eff_err=sigma if inside else _NAN, e=t1))
    return pd.DataFrame(rows)


def test_noiseless_linear_flow_gives_its_fixed_point_exactly():
    fixed = blockspin_fixed_points(_blockspin_frame(T0=2.3, lam=2.0), np.random.default_rng(0), n_boot=20)
    assert len(fixed) == 1
    r = fixed.iloc[0]
    assert r["T_star"] == pytest.approx(2.3, abs=1e-12)
    assert r["n_changes"] == 1 and r["found"] == 1.0
    assert r["down_below"] == 1.0 and r["up_above"] == 1.0
    assert r["n_below"] + r["n_above"] == len(TEMPS)
    assert r["delta_Tc"] == pytest.approx(2.3 - exact.TC)
    assert r["coarse_size"] == 8


def test_fixed_point_error_bar_is_honest():
    """sum z^2 over independent noisy flows is chi-square with one degree of freedom per flow."""
    rng = np.random.default_rng(20261128)
    z = []
    for _ in range(80):
        flow = _blockspin_frame(T0=2.27, lam=2.0, sigma=0.02, rng=rng)
        r = blockspin_fixed_points(flow, rng, n_boot=200).iloc[0]
        z.append((r["T_star"] - 2.27) / r["T_star_err"])
    z = np.asarray(z)
    p = stats.chi2.sf(np.sum(z**2), z.size)
    assert 1e-3 < p < 1 - 1e-3, (np.mean(z**2), p)
    assert abs(np.mean(z)) < 3 / np.sqrt(z.size)  # and unbiased


def test_censored_steps_count_on_their_side():
    flow = _blockspin_frame(T0=2.3, lam=2.0, window=(1.5, 3.5))
    ising = pd.DataFrame({"L": 8, "T": TEMPS, "e": TEMPS})  # e rises with T, as it does
    steps = flow_steps(flow, ising)
    lost = steps[steps["T_eff"].isna()]
    assert len(lost) > 4  # the window really censors both ends
    t1 = 2.3 + 2.0 * (lost["T"] - 2.3)
    assert np.array_equal(lost["side"], np.where(t1 < 1.5, -1.0, 1.0))
    assert (steps["direction"] == np.where(steps["T"] < 2.3, "down", "up")).all()
    # without the ising curve the lost steps have no known direction
    assert (flow_steps(flow)["direction"][steps["T_eff"].isna()] == "unknown").all()
    fixed = blockspin_fixed_points(flow, np.random.default_rng(1), n_boot=10, ising=ising).iloc[0]
    assert fixed["T_star"] == pytest.approx(2.3, abs=1e-12)
    assert fixed["down_below"] == 1.0 and fixed["up_above"] == 1.0


def test_a_stable_fixed_point_is_not_an_unstable_one():
    flow = _blockspin_frame(T0=2.3, lam=0.5)  # T' moves towards 2.3 from both sides
    fixed = blockspin_fixed_points(flow, np.random.default_rng(2), n_boot=10)
    assert np.isnan(fixed["T_star"].iloc[0]) and fixed["n_changes"].iloc[0] == 0
    steps = flow_steps(flow)
    assert (steps["direction"] == np.where(steps["T"] < 2.3, "up", "down")).all()


def test_spurious_sign_changes_do_not_move_the_fixed_point():
    T = np.linspace(1.5, 3.5, 11)
    d = T - 2.45
    d[1] = 0.05  # one noisy point far below: makes a second down->up change at T ~ 1.7
    t_star, n = unstable_fixed_point(T, d)
    assert n == 2 and t_star == pytest.approx(2.45)


def _rbmflow_frame(T1=2.4, rate=0.5, steps=6, L=8):
    return pd.DataFrame([_row(L, T, "rbmflow", k, L, T_eff=T1 + (T - T1) * rate**k, T_eff_err=0.01)
                         for T in TEMPS for k in range(steps + 1)])


def test_rbm_flow_end_point():
    ends = rbmflow_endpoints(_rbmflow_frame(T1=2.4, rate=0.5, steps=6)).iloc[0]
    t_end = 2.4 + (TEMPS - 2.4) / 64
    assert ends["steps"] == 6 and ends["n_start"] == len(TEMPS) and ends["n_lost"] == 0
    assert ends["T_end_mean"] == pytest.approx(t_end.mean())
    assert ends["T_end_spread"] == pytest.approx(np.std(t_end, ddof=1))
    assert ends["start_spread"] == pytest.approx(np.std(TEMPS, ddof=1))
    assert ends["delta_Tc"] == pytest.approx(t_end.mean() - exact.TC)
    # every start moves towards 2.4: closer to Tc unless it started between Tc and 2.4's mirror
    closer = np.abs(t_end - exact.TC) < np.abs(TEMPS - exact.TC)
    assert ends["closer_to_Tc"] == pytest.approx(closer.mean())
    assert 0 < ends["closer_to_Tc"] < 1


def test_stacked_growth_fraction():
    grows_at = set(TEMPS[::3])
    rows = []
    for T in TEMPS:
        rows.append(_row(8, T, "stacked", 1, 16, extent=2.0, mean_alignment=0.1))
        rows.append(_row(8, T, "stacked", 2, 4, extent=2.5 if T in grows_at else 1.5, mean_alignment=0.3))
    g = stacked_growth(pd.DataFrame(rows)).iloc[0]
    assert (g["layer"], g["next_layer"], g["n_T"]) == (1, 2, len(TEMPS))
    assert g["grows"] == pytest.approx(len(grows_at) / len(TEMPS))
    assert g["next_alignment"] == pytest.approx(0.3)
    assert g["uniform_extent"] == pytest.approx(uniform_extent(8)) == pytest.approx(np.sqrt(63 / 6))
    summary = flow_summary(pd.DataFrame(columns=["L"]), pd.DataFrame(), stacked_growth(pd.DataFrame(rows)))
    assert list(summary["kind"]) == ["stacked"]


def test_projected_fields_are_the_layer_products():
    rng = np.random.default_rng(3)
    W1, W2, W1_early = rng.normal(size=(16, 6)), rng.normal(size=(6, 3)), rng.normal(size=(16, 6))
    rows = [{"T": 2.0, "layer": 1, "epoch": 5, "n_visible": 16, "n_hidden": 6, "W": W1.ravel()},
            {"T": 2.0, "layer": 1, "epoch": 0, "n_visible": 16, "n_hidden": 6, "W": W1_early.ravel()},
            {"T": 2.0, "layer": 2, "epoch": 5, "n_visible": 6, "n_hidden": 3, "W": W2.ravel()}]
    fields = projected_fields(pd.DataFrame(rows))
    assert list(fields) == [2.0]
    F1, F2 = fields[2.0]
    np.testing.assert_array_equal(F1, W1)
    np.testing.assert_allclose(F2, W1 @ W2, rtol=1e-12)
    bad = pd.DataFrame(rows[:1] + [{**rows[2], "n_visible": 3, "n_hidden": 6, "W": W2.T.ravel()}])
    assert projected_fields(bad) == {}  # layers that do not chain are left out
