"""Nothing outside OUT is ever written, moved or deleted, whatever OUT's metadata says.

A manifest only describes its task's parts; the store derives every path it touches from
(table, L, task id). Crafted manifests (paths climbing out of OUT, paths to another task's
part, the wrong shape), manifests of tasks the plan does not have, and symbolic links inside
OUT that lead elsewhere must leave every file outside OUT as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.store import Store, StoreError

SPEC = """
[sweep]
name = "paths"
seed = 3
lattice_sizes = [4]
temperatures = [2.0, 3.0]
[sampling]
burn_in = 50
samples = 40
thin = 1
"""


def _snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root (symbolic links not followed)."""
    out = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture()
def world(tmp_path):
    """A finished sweep in tmp/work/out, with bystander files elsewhere under tmp."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "work" / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("precious\n")
    (tmp_path / "work" / "sibling.txt").write_text("also precious\n")
    return spec, out, outside


def _run(spec, out):
    return main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"])


def _bystanders(tmp_path: Path, out: Path) -> dict[str, str]:
    snap = _snapshot(tmp_path)
    prefix = str(out.relative_to(tmp_path)) + os.sep
    return {k: v for k, v in snap.items() if not k.startswith(prefix) and not k.endswith("spec.toml")}


def _a_manifest(out: Path) -> Path:
    return sorted((out / "_tasks").glob("L4/sample-*.json"))[0]


# A manifest's paths are relative to OUT = tmp/work/out: "../../outside/f.txt" is tmp/outside/f.txt
# and "../sibling.txt" is tmp/work/sibling.txt. Both exist (the test asserts so): the code before
# this rule moved them into OUT/_damaged.
@pytest.mark.parametrize("where", ["../../outside/f.txt", "../sibling.txt", "/etc/hostname"])
def test_a_manifest_pointing_outside_moves_and_overwrites_nothing(world, tmp_path, capsys, where):
    spec, out, outside = world
    if not where.startswith("/"):
        assert (out / where).resolve().is_file()  # the crafted path names a real bystander
    before = _bystanders(tmp_path, out)
    manifest = _a_manifest(out)
    record = json.loads(manifest.read_text())
    record["parts"]["ising"]["path"] = where
    manifest.write_text(json.dumps(record))
    assert _run(spec, out) == 0
    assert _bystanders(tmp_path, out) == before
    assert Path("/etc/hostname").exists()
    captured = capsys.readouterr()
    assert "1 damaged and recomputed" in captured.out
    assert "points at" in captured.err  # the reason, named on stderr
    damaged = list((out / "_damaged").rglob(manifest.name))
    assert len(damaged) == 1  # the crafted manifest is kept aside, never deleted
    assert manifest.exists()  # and the task was recomputed with a fresh one
    assert json.loads(manifest.read_text())["parts"]["ising"]["path"].startswith("ising/L4/")
    assert _run(spec, out) == 0 and "0 damaged" in capsys.readouterr().out  # converged


def test_a_manifest_naming_another_tasks_part_leaves_that_part_alone(world, tmp_path, capsys):
    spec, out, _ = world
    first, second = sorted((out / "_tasks").glob("L4/sample-*.json"))
    other = json.loads(second.read_text())["parts"]["ising"]["path"]
    other_bytes = (out / other).read_bytes()
    record = json.loads(first.read_text())
    record["parts"]["ising"]["path"] = other
    first.write_text(json.dumps(record))
    assert _run(spec, out) == 0
    assert (out / other).read_bytes() == other_bytes
    assert "1 damaged and recomputed" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["[]", '{"parts": []}', '{"parts": "x"}', '{"parts": {"ising": null}}',
                                     '{"parts": {"ising": {"path": "ising/L4/x.parquet"}}}', "{}"])
def test_manifests_of_the_wrong_shape_are_quarantined_not_trusted(world, tmp_path, capsys, content):
    spec, out, _ = world
    before = _bystanders(tmp_path, out)
    _a_manifest(out).write_text(content)
    assert _run(spec, out) == 0
    assert "1 damaged and recomputed" in capsys.readouterr().out
    assert _bystanders(tmp_path, out) == before


def test_a_stale_manifest_is_reported_never_touched(world, tmp_path, capsys):
    spec, out, _ = world
    stale = out / "_tasks" / "L4" / "sample-00000000deadbeef.json"
    stale.write_text(json.dumps({"parts": {"ising": {"path": "../../outside/f.txt", "size": 1,
                                                      "sha256": "0" * 64}}}))
    body = stale.read_bytes()
    assert _run(spec, out) == 0
    assert "0 damaged" in capsys.readouterr().out
    assert stale.read_bytes() == body
    assert main(["status", str(out)]) in (0, 1)
    assert "stale" in capsys.readouterr().out


def test_links_inside_out_that_lead_outside_are_not_written_or_moved_through(world, tmp_path):
    spec, out, outside = world
    store = Store(out)
    # a table folder replaced by a link to a folder outside OUT
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = out / "series" / "L8"
    link.parent.mkdir(exist_ok=True)
    os.symlink(target, link)
    with pytest.raises(StoreError, match="outside"):
        store._write_bytes(str(link / "part-0123456789abcdef.parquet"), b"x")
    assert list(target.iterdir()) == []
    # a _damaged folder that is a link out of OUT: quarantine moves nothing into it
    os.symlink(outside, out / "_damaged")
    manifest = _a_manifest(out)
    manifest.write_text("[]")
    tid = manifest.stem.split("-", 1)[1]
    before = _snapshot(outside)
    with pytest.raises(StoreError, match="_damaged leads outside"):
        store.quarantine(store.manifests()[tid])
    assert _snapshot(outside) == before
    assert manifest.exists()  # left where it was rather than moved outside


def test_a_damaged_folder_that_leads_outside_stops_the_run_and_keeps_the_damage(world, tmp_path, capsys):
    """Quarantine cannot move aside (OUT/_damaged links out of OUT): one line, exit 3, the damaged
    part neither moved out of OUT nor recomputed over; once the link is gone the rerun recovers."""
    spec, out, outside = world
    os.symlink(outside, out / "_damaged")
    part = sorted((out / "ising" / "L4").glob("part-*.parquet"))[0]
    part.write_bytes(b"damaged")
    before = _bystanders(tmp_path, out)
    capsys.readouterr()
    assert _run(spec, out) == 3
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert "_damaged leads outside" in line and "remove or rename it and rerun" in line
    assert part.read_bytes() == b"damaged" and _bystanders(tmp_path, out) == before
    (out / "_damaged").unlink()
    assert _run(spec, out) == 0 and "1 damaged and recomputed" in capsys.readouterr().out
    assert [p.read_bytes() for p in (out / "_damaged").rglob(f"ising/L4/{part.name}")] == [b"damaged"]


def test_only_our_own_temporary_files_are_cleaned(world, capsys):
    """A driver killed mid-write leaves ``.<name>.<32 hex>.tmp``; a run removes those, never a
    user's own dot-files that happen to end in .tmp."""
    spec, out, _ = world
    folder = out / "ising" / "L4"
    ours = folder / f".part-0123456789abcdef.parquet.{'ab' * 16}.tmp"
    theirs = [folder / ".my-notes.tmp", folder / ".x.tmp", out / ".draft.tmp"]
    for path in [ours, *theirs]:
        path.write_text("x")
    assert _run(spec, out) == 0
    assert not ours.exists() and all(p.read_text() == "x" for p in theirs)


def test_a_part_that_is_a_link_out_of_out_is_replaced_not_written_through(world, tmp_path, capsys):
    spec, out, outside = world
    part = sorted((out / "ising" / "L4").glob("part-*.parquet"))[0]
    part.unlink()
    os.symlink(outside / "f.txt", part)  # the task is now damaged: its part is "missing"
    before = _snapshot(outside)
    assert _run(spec, out) == 0
    assert "1 damaged and recomputed" in capsys.readouterr().out
    assert _snapshot(outside) == before
    assert part.is_file() and not part.is_symlink()  # the link itself was replaced
    assert _run(spec, out) == 0 and "0 damaged" in capsys.readouterr().out


def test_a_report_folder_that_links_out_of_out_is_refused(world, tmp_path, capsys):
    spec, out, outside = world
    (outside / "old.png").write_bytes(b"keep me")
    os.symlink(outside, out / "report")
    before = _snapshot(outside)
    assert main(["report", str(out)]) == 2
    assert "leads outside" in capsys.readouterr().err
    assert _snapshot(outside) == before
