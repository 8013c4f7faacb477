"""The Python API (``import rgsweep``): the same validation, plan, run and results as the command
line, as objects."""

from __future__ import annotations

import pytest

import rgsweep
from orchestrator.cli import main

SPEC = {
    "sweep": {"name": "api", "seed": 4, "lattice_sizes": [4], "temperatures": [2.0, 3.0]},
    "sampling": {"burn_in": 30, "samples": 40, "thin": 1},
}


def test_validate_takes_a_dict_a_path_or_a_spec_and_names_every_broken_rule(tmp_path):
    spec = rgsweep.validate(SPEC)
    assert spec.name == "api" and rgsweep.validate(spec) is spec
    path = tmp_path / "spec.toml"
    path.write_text('[sweep]\nname = "api"\nseed = 4\nlattice_sizes = [4]\ntemperatures = [2.0, 3.0]\n'
                    "[sampling]\nburn_in = 30\nsamples = 40\nthin = 1\n")
    assert rgsweep.validate(path) == spec and rgsweep.validate(str(path)) == spec
    bad = {**SPEC, "sampling": {"burn_in": -1, "samples": 0, "thin": 1}}
    with pytest.raises(rgsweep.SpecError) as err:
        rgsweep.validate(bad)
    assert "burn_in" in str(err.value) and "samples" in str(err.value)
    with pytest.raises(TypeError, match="spec must be a path, a dict or a SweepSpec"):
        rgsweep.validate(42)


def test_run_load_and_plan_match_the_command_line(tmp_path, capsys):
    summary = rgsweep.run(SPEC, out=tmp_path / "api", backend="serial")
    assert (summary.total, summary.run, summary.exit_code) == (2, 2, 0)
    assert {t.id for t in rgsweep.plan(SPEC)} == set(rgsweep.load(summary.out).ising["task_id"])
    path = tmp_path / "spec.toml"
    path.write_text('[sweep]\nname = "api"\nseed = 4\nlattice_sizes = [4]\ntemperatures = [2.0, 3.0]\n'
                    "[sampling]\nburn_in = 30\nsamples = 40\nthin = 1\n")
    assert main(["run", str(path), "--out", str(tmp_path / "cli"), "--backend", "serial", "--quiet"]) == 0
    api, cli = rgsweep.load(summary.out).ising, rgsweep.load(tmp_path / "cli").ising
    assert (api.drop(columns=["wall_s", "flips_per_ns"]).sort_values("T").reset_index(drop=True)
            .equals(cli.drop(columns=["wall_s", "flips_per_ns"]).sort_values("T").reset_index(drop=True)))
    again = rgsweep.run(SPEC, out=tmp_path / "api", backend="serial", progress=True)
    assert (again.run, again.skipped) == (0, 2)  # resumed: nothing to do
    ahead = rgsweep.forecast(SPEC, workers=8)
    assert ahead["tasks"] == 2 and set(ahead["predicted_wall_s"]) == {"2", "8"} and ahead["core_seconds"] > 0
    assert rgsweep.forecast(SPEC, out=summary.out)["tasks"] == 0  # everything is done there
    assert rgsweep.load(summary.out).configurations(4, T=3.0).shape == (40, 4, 4)
