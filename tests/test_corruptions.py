"""Every kind of damage to OUT that the closing attack tried ends in recovery or one line: the run
exits 0 (recomputing what it must), or exits 3 with one line naming a path under OUT; once that
path is put right the rerun exits 0, a second rerun runs nothing, and every table equals an
undisturbed run's. Kinds not covered here are in test_records (sweep.json, plan.json),
test_store_paths (crafted manifests, links), test_faults and test_environment."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.store import LOCK

from test_faults import assert_same_tables
from test_run import tables_of
from test_store_paths import SPEC as PATHS_SPEC

SPEC = PATHS_SPEC.replace('name = "paths"', 'name = "corrupt"')  # a 2-task sweep at L = 4


def _manifest(out: Path) -> Path:
    return sorted((out / "_tasks").glob("L4/sample-*.json"))[0]


def _part(out: Path, table: str = "ising", k: int = 0) -> Path:
    return sorted((out / table / "L4").glob("part-*.parquet"))[k]


def _replace_by_folder(path: Path) -> Path:
    path.unlink()
    path.mkdir()
    (path / "x").write_text("x")
    return path


def _edit_manifest(out: Path, change) -> None:
    path = _manifest(out)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _first_part(doc: dict) -> dict:
    parts = doc["parts"]
    return parts[sorted(parts)[0]] if isinstance(parts, dict) else parts[0]


# each kind: damage OUT, and return the fix a user would make after a one-line refusal (or None)
KINDS = {
    "manifest deleted": lambda out: _manifest(out).unlink(),
    "manifest truncated": lambda out: _manifest(out).write_text(_manifest(out).read_text()[:20]),
    "manifest garbage bytes": lambda out: _manifest(out).write_bytes(b"\x00\xff\xfe garbage"),
    "manifest null": lambda out: _manifest(out).write_text("null"),
    "manifest wrong size": lambda out: _edit_manifest(out, lambda d: _first_part(d).update(size=1)),
    "manifest wrong sha256": lambda out: _edit_manifest(out, lambda d: _first_part(d).update(sha256="0" * 64)),
    "manifest size not a number": lambda out: _edit_manifest(out, lambda d: _first_part(d).update(size=True)),
    "part zero-length": lambda out: _part(out).write_bytes(b""),
    "part swapped with another task's": lambda out: shutil.copy(_part(out, k=1), _part(out, k=0)),
    "lock file of garbage": lambda out: (out / LOCK).write_bytes(b"\x00garbage"),
    "stray files in every folder": lambda out: [
        (d / name).write_text("x") for d in [out, *[p for p in out.rglob("*") if p.is_dir()]]
        for name in ("notes.txt", ".hidden", "part-zzzz.parquet")],
    "a folder in place of a manifest": lambda out: (lambda p: (lambda: shutil.rmtree(p)))(
        _replace_by_folder(_manifest(out))),
    "a folder in place of a part": lambda out: (lambda p: (lambda: shutil.rmtree(p)))(
        _replace_by_folder(_part(out))),
    "a folder in place of the lock": lambda out: (lambda p: (p.mkdir(), lambda: p.rmdir())[1])(out / LOCK),
    "a file in place of a table folder": lambda out: (lambda p: (shutil.rmtree(p), p.write_text("x"),
                                                                 lambda: p.unlink())[2])(out / "series"),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    spec = tmp / "spec.toml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--out", str(tmp / "out"), "--backend", "serial", "--quiet"]) == 0
    return spec, tmp / "out", tables_of(tmp / "out")


def _run(spec, out) -> int:
    return main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_damage_is_recovered_or_named_in_one_line(tmp_path, reference, kind, capsys):
    spec, done, tables = reference
    out = tmp_path / "out"
    shutil.copytree(done, out, symlinks=True)
    fix = KINDS[kind](out)
    capsys.readouterr()
    code = _run(spec, out)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert "Traceback" not in "\n".join(err)
    if code == 3:  # refused: one line naming a path under OUT, then the user's fix
        assert len(err) == 1 and err[0].startswith("rgsweep: error: ") and str(out) in err[0], err
        assert callable(fix), f"{kind}: refused, but the test knows no fix"
        fix()
        assert _run(spec, out) == 0
    else:
        assert code == 0, err
        if callable(fix):  # recovered around it (e.g. a folder where a manifest was): tidy up
            fix()
    capsys.readouterr()
    assert _run(spec, out) == 0 and " 0 run, 2 skipped" in capsys.readouterr().out
    assert_same_tables(tables_of(out), tables)
    assert not os.path.exists(out / LOCK) or (out / LOCK).is_file()
