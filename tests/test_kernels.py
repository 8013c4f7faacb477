"""Exact tests: each numba kernel against a slow pure-Python/numpy reference under one seed."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from workers.ising.lattice import check_spins, random_lattice, total_energy, total_magnetization
from workers.ising.metropolis import (_metropolis_reference, acceptance_table, acceptance_thresholds,
                                metropolis_sweeps)
from workers.ising.rng import (_next_uint64, _reference_next_uint64, reference_uniform,
                         child_seed_sequence, make_rng_state, uniform_doubles)
from workers.ising.wolff import _wolff_reference, cluster_stack, wolff_sweep_equivalents, wolff_updates

SEED = 20240611


def _lattice_and_state(L, key):
    seq = np.random.SeedSequence(SEED, spawn_key=(key,))
    return random_lattice(L, np.random.default_rng(seq)), make_rng_state(seq)


def _energy_numpy(spins):
    s = spins.astype(np.int64)
    return int(-(s * (np.roll(s, -1, 0) + np.roll(s, -1, 1))).sum())


# --- rng ---------------------------------------------------------------------------------------

def test_xorshift128plus_matches_vigna_c_code():
    # First outputs of Vigna's reference xorshift128plus.c (a, b, c = 23, 18, 5) from s = {1, 2},
    # computed with gcc.
    expected = [3, 8388645, 33816707, 70368778527840, 211106267172129]
    state = np.array([1, 2], dtype=np.uint64)
    assert [int(_next_uint64(state)) for _ in range(5)] == expected
    state = np.array([1, 2], dtype=np.uint64)
    assert [_reference_next_uint64(state) for _ in range(5)] == expected
    state = np.array([0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9], dtype=np.uint64)
    for _ in range(1000):
        _next_uint64(state)
    assert int(_next_uint64(state)) == 8922664390485301823


def test_uniform_doubles_are_top_53_bits_and_match_reference():
    state = make_rng_state(np.random.SeedSequence(SEED))
    ref_state = state.copy()
    raw_state = state.copy()
    u = uniform_doubles(state, 2000)
    assert_array_equal(u, [reference_uniform(ref_state) for _ in range(2000)])
    raw = np.array([_next_uint64(raw_state) for _ in range(2000)], dtype=np.uint64)
    assert_array_equal(u, (raw >> np.uint64(11)).astype(np.float64) / 2.0**53)
    assert_array_equal(state, ref_state)
    assert np.all((u >= 0) & (u < 1))


def test_uniform_doubles_are_uniform():
    from scipy.stats import chisquare
    u = uniform_doubles(make_rng_state(np.random.SeedSequence(SEED)), 200_000)
    counts = np.bincount((u * 100).astype(int), minlength=100)
    assert chisquare(counts).pvalue > 1e-3


def test_rng_state_seeding():
    seq = np.random.SeedSequence(7)
    a, b = make_rng_state(seq), make_rng_state(seq)
    assert a.dtype == np.uint64 and a.shape == (2,) and np.any(a != 0)
    assert_array_equal(a, b)
    assert np.any(make_rng_state(np.random.SeedSequence(8)) != a)
    with pytest.raises(ValueError, match="all zero"):
        uniform_doubles(np.zeros(2, dtype=np.uint64), 1)
    with pytest.raises(TypeError):
        make_rng_state(7)


def test_child_seed_sequence_is_spawn_without_mutation():
    parent = np.random.SeedSequence(11)
    kids = [child_seed_sequence(parent, i) for i in range(3)]
    assert parent.n_children_spawned == 0
    spawned = np.random.SeedSequence(11).spawn(3)
    for kid, ref in zip(kids, spawned):
        assert_array_equal(kid.generate_state(4), ref.generate_state(4))


# --- lattice -----------------------------------------------------------------------------------

@pytest.mark.parametrize("L", [2, 3, 4, 7, 8])
def test_total_energy_and_magnetization_match_numpy(L):
    rng = np.random.default_rng(SEED)
    for _ in range(5):
        spins = random_lattice(L, rng)
        assert total_energy(spins) == _energy_numpy(spins)
        assert total_magnetization(spins) == int(spins.sum())


def test_ground_states_and_antiferromagnet():
    L = 6
    up = np.ones((L, L), dtype=np.int8)
    assert total_energy(up) == -2 * L * L and total_magnetization(up) == L * L
    assert total_energy(-up) == -2 * L * L and total_magnetization(-up) == -L * L
    checker = np.where(np.indices((L, L)).sum(0) % 2 == 0, 1, -1).astype(np.int8)
    assert total_energy(checker) == 2 * L * L and total_magnetization(checker) == 0


def test_random_lattice_is_deterministic_and_valid():
    a = random_lattice(9, np.random.default_rng(1))
    b = random_lattice(9, np.random.default_rng(1))
    assert a.dtype == np.int8 and a.shape == (9, 9)
    assert_array_equal(a, b)
    assert set(np.unique(a)) == {-1, 1}
    check_spins(a)
    for bad in (np.zeros((4, 4), dtype=np.int8), np.ones((4, 4)), np.ones((4, 5), dtype=np.int8)):
        with pytest.raises(ValueError):
            check_spins(bad)
    with pytest.raises(ValueError, match="L must be"):
        random_lattice(1, np.random.default_rng(1))


# --- metropolis --------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [2.0, 3.0])
def test_metropolis_matches_reference(T):
    spins, state = _lattice_and_state(8, int(T * 10))
    ref_spins, ref_state = spins.copy(), state.copy()
    accepted = metropolis_sweeps(spins, 1.0 / T, 6, state)
    ref_accepted = _metropolis_reference(ref_spins, 1.0 / T, 6, ref_state)
    assert accepted == ref_accepted > 0
    assert_array_equal(spins, ref_spins)
    assert_array_equal(state, ref_state)


@pytest.mark.parametrize("T", [0.5, 2.269185, 5.0])
def test_metropolis_incremental_energy_and_magnetization_are_exact(T):
    spins, state = _lattice_and_state(10, 3)
    em = np.array([total_energy(spins), total_magnetization(spins)], dtype=np.int64)
    for _ in range(20):
        metropolis_sweeps(spins, 1.0 / T, 3, state, em)
        assert em[0] == total_energy(spins) == _energy_numpy(spins)
        assert em[1] == total_magnetization(spins)


def test_acceptance_thresholds_are_the_same_event_as_the_table():
    for beta in (0.05, 0.44, 1.0, 3.0, 400.0):
        p = acceptance_table(beta)
        thr = acceptance_thresholds(beta)
        for k in range(5):
            t = int(thr[k])
            for top in {max(t - 1, 0), t, min(t + 1, 2**53 - 1)}:
                assert (top < t) == (top / 2.0**53 < p[k])
    assert np.all(acceptance_thresholds(0.3)[:3] == 2**53)  # dE <= 0 always accepted


def test_metropolis_zero_temperature_limit_only_lowers_energy():
    spins, state = _lattice_and_state(8, 5)
    energies = [total_energy(spins)]
    for _ in range(10):
        metropolis_sweeps(spins, 1e3, 1, state)
        energies.append(total_energy(spins))
    assert np.all(np.diff(energies) <= 0)


def test_metropolis_rejects_odd_L_and_bad_input():
    spins, state = _lattice_and_state(5, 1)
    with pytest.raises(ValueError, match="even L"):
        metropolis_sweeps(spins, 0.4, 1, state)
    spins, state = _lattice_and_state(4, 1)
    with pytest.raises(ValueError, match="beta"):
        metropolis_sweeps(spins, -1.0, 1, state)
    with pytest.raises(ValueError, match="n_sweeps"):
        metropolis_sweeps(spins, 0.4, -1, state)
    with pytest.raises(ValueError, match="rng_state"):
        metropolis_sweeps(spins, 0.4, 1, np.array([1, 2]))


# --- wolff -------------------------------------------------------------------------------------

@pytest.mark.parametrize("L, T", [(6, 2.0), (6, 2.6), (8, 2.269185), (8, 3.0), (2, 2.0), (3, 2.5)])
def test_wolff_matches_reference(L, T):
    spins, state = _lattice_and_state(L, 100 + L)
    ref_spins, ref_state = spins.copy(), state.copy()
    flipped = wolff_updates(spins, 1.0 / T, 25, state, cluster_stack(L))
    ref_flipped = _wolff_reference(ref_spins, 1.0 / T, 25, ref_state)
    assert flipped == ref_flipped >= 25
    assert_array_equal(spins, ref_spins)
    assert_array_equal(state, ref_state)


def test_wolff_cluster_limits():
    L = 8
    spins = np.ones((L, L), dtype=np.int8)
    state = make_rng_state(np.random.SeedSequence(SEED))
    # p_add = 1 - exp(-200) is 1 in double precision: the whole aligned lattice is one cluster
    assert wolff_updates(spins, 100.0, 1, state) == L * L
    assert np.all(spins == -1)
    # p_add ~ 2e-9: single-spin clusters
    assert wolff_updates(spins, 1e-9, 50, state) == 50


def test_wolff_sweep_equivalents_flip_at_least_N_per_sweep():
    L = 8
    spins, state = _lattice_and_state(L, 9)
    flipped, clusters = wolff_sweep_equivalents(spins, 1 / 2.5, 30, state)
    assert flipped >= 30 * L * L and clusters >= 30
    with pytest.raises(ValueError, match="stack"):
        wolff_updates(spins, 0.4, 1, state, np.empty(10, dtype=np.int64))
