"""Stored configurations cover both magnetisation sectors (``[sampling] symmetrize``).

Below Tc a local sampler never reverses the magnetisation of an L = 16 lattice, so without a
global sign the stored samples (and every RBM and KL estimate built on them) see one sector
only. The sign is a fair coin per stored configuration, exact at zero field.
"""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from contract.configs import SampleConfig
from contract.layout import samples_array
from workers.tasks import sample_task


def _run(symmetrize, T=1.8, L=16, n=2000):
    config = SampleConfig(L=L, T=T, algorithm="metropolis", burn_in=1000, samples=n, thin=10,
                          symmetrize=symmetrize, seed=20261201)
    return sample_task(config, (7, 11), {})


@pytest.fixture(scope="module")
def both():
    return _run(True), _run(False)


def _magnetisations(out, L=16):
    import pyarrow as pa

    table = pa.table({k: out["samples"][k] for k in ("index", "spins")})
    return samples_array(table, L * L).mean(axis=1)


def test_symmetrized_samples_fill_both_sectors_fairly(both):
    m = _magnetisations(both[0])
    n = m.size
    frac = np.mean(m > 0)
    sigma = np.sqrt(0.25 / n)  # independent fair coins: binomial standard error
    assert abs(frac - 0.5) <= 3 * sigma, (frac, sigma)
    assert np.all(np.abs(m) > 0.5)  # still ordered: only the sign was drawn


def test_without_symmetrize_the_local_sampler_stays_in_one_sector(both):
    # The power of the test above: the same chain unsigned has every sample in one sector.
    m = _magnetisations(both[1])
    assert np.mean(m > 0) in (0.0, 1.0)


def test_symmetrize_changes_signs_only_and_leaves_the_measurements_alone(both):
    sym, plain = both
    ms, mp = _magnetisations(sym), _magnetisations(plain)
    assert_array_equal(np.abs(ms), np.abs(mp))
    assert 0 < np.mean(np.sign(ms) != np.sign(mp)) < 1
    for key in ("e", "e_err", "m_abs", "C", "chi", "binder", "tau_int_e"):
        assert sym["ising"][key] == plain["ising"][key]
    assert_array_equal(sym["series"]["m"], plain["series"]["m"])
    assert sym["ising"]["symmetrize"] is True and plain["ising"]["symmetrize"] is False
