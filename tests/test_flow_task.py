"""The RG-flow stage end to end: a spec with [rg_flow] fills the rg_flow table with all three flows."""

from __future__ import annotations

import numpy as np

from analysis import read_table
from orchestrator.cli import main
from orchestrator.plan import make_plan
from orchestrator.spec import load_spec
from workers.tasks.flow import pool_indices

SPEC = """
[sweep]
name = "flow"
seed = 7
lattice_sizes = [4, 8]
temperatures = [1.5, 1.8, 2.1, 2.269185, 2.5, 3.0, 3.5]
[sampling]
algorithm = "wolff"
burn_in = 300
samples = 400
thin = 2
[rg_flow]
block = 2
layers = ["N/4", "N/16"]
rbm_flow_steps = 3
epochs = 5
"""


def test_flow_stage_fills_the_rg_flow_table(tmp_path):
    spec_path = tmp_path / "flow.toml"
    spec_path.write_text(SPEC)
    plan = make_plan(load_spec(spec_path))
    flows = [t for t in plan if t.kind == "flow"]  # L = 4 has no coarse level >= 4 x 4
    levels = {t.T: t for t in flows if t.config.part == "levels"}
    (pool,) = [t for t in flows if t.config.part == "pool"]
    assert all(t.L == 8 for t in flows) and sorted(levels) == sorted(s.T for s in plan if s.kind == "sample"
                                                                       and s.L == 8)
    assert all(len(t.deps) == 14 for t in levels.values())  # the 7 sample tasks of L = 8 and of L = 4
    assert len(pool.deps) == 7 and pool.config.pool_samples == 400  # "auto": one temperature's
    out = tmp_path / "out"
    assert main(["run", str(spec_path), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    rows = read_table(out, "rg_flow")
    assert set(rows["kind"]) == {"blockspin", "stacked", "rbmflow"}
    assert (rows["L"] == 8).all()
    by_part = rows["kind"] == "rbmflow"
    assert (rows[by_part]["task_id"] == pool.id).all()
    assert all(levels[r.T].id == r.task_id for r in rows[~by_part].itertuples())
    per_T = rows.groupby("kind").size()
    assert per_T["blockspin"] == 7 * 2  # levels 0 (8 x 8) and 1 (4 x 4)
    assert per_T["stacked"] == 7 * 2  # two layers
    assert per_T["rbmflow"] == 7 * (3 + 1)  # steps 0..3
    blocks = rows[rows["kind"] == "blockspin"]
    assert set(blocks["size"]) == {8, 4}
    level0 = blocks[blocks["level"] == 0]
    # Level 0 matched against its own curve returns (nearly) its own temperature where matchable.
    ok = level0["T_eff"].notna()
    assert ok.sum() >= 4
    assert np.all(np.abs(level0["T_eff"][ok] - level0["T"][ok]) < 4 * level0["T_eff_err"][ok] + 1e-9)
    stacked = rows[rows["kind"] == "stacked"]
    assert stacked["extent"].notna().all() and (stacked["extent"] >= 0).all()
    params = read_table(out, "rbm_params")
    assert sorted(set(params["layer"])) == [1, 2] and set(params["n_hidden"]) == {16, 4}
    spectra = read_table(out, "spectra")
    assert (spectra["sigma_fit"] > 0).all() and spectra["mp_ks"].between(0, 1).all()
    align = read_table(out, "rg_alignment")
    assert align["null_score"].notna().all()  # every stacked layer has its permuted-site null


def test_flow_task_with_two_failed_inputs_is_counted_once(tmp_path, monkeypatch, capsys):
    spec_path = tmp_path / "flow.toml"
    spec_path.write_text(SPEC)
    plan = make_plan(load_spec(spec_path))
    victims = [t.id for t in plan if t.kind == "sample" and t.L == 8][:2]
    monkeypatch.setenv("RGSWEEP_FAIL_TASKS", ",".join(victims))
    assert main(["run", str(spec_path), "--out", str(tmp_path / "out"), "--backend", "serial",
                 "--quiet"]) == 1
    # every flow task of L = 8 needs every sample task of L = 8: 7 levels tasks and the pool
    assert "2 failed, 8 not run (a dependency failed)" in capsys.readouterr().out


def test_pool_draws_evenly_from_every_temperature():
    picks = pool_indices([400, 400, 400], 1000)
    assert [len(p) for p in picks] == [334, 333, 333]
    assert all(np.all(np.diff(p) >= 1) and p[0] == 0 and p[-1] < 400 for p in picks)
    assert np.all(np.diff(picks[1]) <= 2)  # every 1.2th configuration: spread over the whole chain
    short = pool_indices([10, 400], 400)  # never more than a temperature has
    assert [len(p) for p in short] == [10, 200] and list(short[0]) == list(range(10))
