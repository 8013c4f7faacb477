"""Damaged sweep.json / plan.json never wedge a sweep: a run moves them aside and rebuilds them
from its spec; status and the loaders name them in one line with the fix."""

from __future__ import annotations

import json

import pytest

from analysis import read_table
from orchestrator.cli import main

from test_store_paths import SPEC as PATHS_SPEC

SPEC = PATHS_SPEC.replace('name = "paths"', 'name = "records"')  # a 2-task sweep at L = 4

DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "garbage": lambda text: "\x00\xff garbage",
    "empty": lambda text: "",
    "a list": lambda text: "[]",
    "a number": lambda text: "3",
    "no task ids": lambda text: json.dumps({"task_ids": []}),
    "ids of the wrong kind": lambda text: json.dumps({"task_ids": [1, 2]}),
    "spec not a table": lambda text: json.dumps({"spec": "x"}),
    "history not a list": lambda text: json.dumps({**json.loads(text), "history": 5}) if text.startswith("{") else "",
}


@pytest.fixture()
def finished(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return spec, out, read_table(out, "ising")


@pytest.mark.parametrize("name", ["sweep.json", "plan.json"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_record_is_set_aside_and_rebuilt(finished, name, damage, capsys):
    spec, out, ising = finished
    path = out / name
    original = path.read_text()
    damaged = DAMAGE[damage](original)
    path.write_bytes(damaged.encode("latin-1"))
    still_valid = (name == "sweep.json" and damage in ("no task ids", "ids of the wrong kind")) or \
        (name == "plan.json" and damage in ("spec not a table", "history not a list"))
    capsys.readouterr()
    if name == "sweep.json" and not still_valid:
        assert main(["status", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "sweep.json is damaged" in err[0] and "rgsweep run SPEC" in err[0]
    if name == "plan.json" and not still_valid:
        with pytest.raises(ValueError, match=r"plan.json is damaged .*rgsweep run SPEC"):
            read_table(out, "ising")
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert "0 run, 2 skipped" in captured.out  # nothing recomputed: the results were intact
    if not still_valid:
        assert f"{name} rebuilt from this spec" in captured.err
        kept = list((out / "_damaged").glob(f"*-{name}"))
        assert len(kept) == 1 and kept[0].read_bytes() == damaged.encode("latin-1")
    rebuilt = json.loads(path.read_text())
    assert rebuilt == json.loads(original) or name == "sweep.json"
    assert main(["status", str(out)]) == 0
    assert read_table(out, "ising").equals(ising)


def test_record_that_is_a_folder_is_named(finished, capsys):
    spec, out, _ = finished
    (out / "sweep.json").unlink()
    (out / "sweep.json").mkdir()
    capsys.readouterr()
    assert main(["status", str(out)]) == 2
    assert "sweep.json is not a file" in capsys.readouterr().err
