"""Exact: analysis' own copy of the exact references agrees with workers.exact to 1e-12."""

import numpy as np
import pytest

from analysis import exact_reference as ref
from workers import exact as w

TEMPS = np.concatenate([np.linspace(0.6, 6.0, 41), [ref.TC, 2.3, 2.2691853]])


@pytest.mark.parametrize("L", [2, 3, 4, 8, 16, 33, 64])
def test_kaufman_matches_workers(L):
    a, b = ref.kaufman(L, TEMPS), w.kaufman(L, TEMPS)
    for key in ("lnZ", "f", "u", "c"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_c_peak_onsager_and_constants_match_workers():
    for L in (4, 16, 32):
        np.testing.assert_allclose(ref.kaufman_c_peak(L), w.kaufman_c_peak(L), rtol=1e-12)
    T = np.array([1.5, 2.0, 2.5, 3.5])
    a, b = ref.onsager(T), w.onsager(T)
    for key in ("f", "u", "c"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.spontaneous_magnetization(T), w.spontaneous_magnetization(T), rtol=1e-12)
    assert ref.TC == w.TC
    assert ref.NU == 1.0 and ref.GAMMA_OVER_NU == 1.75


def test_kaufman_matches_enumeration_for_L4():
    T = np.array([1.0, 2.0, ref.TC, 3.0])
    exact = w.brute_force(4, T)
    mine = ref.kaufman(4, T)
    for key in ("f", "u", "c"):
        np.testing.assert_allclose(mine[key], exact[key], rtol=1e-10)
