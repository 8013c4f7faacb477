"""The loaders read exactly the committed parts of the current plan: strays are ignored, a part
missing behind its manifest is named, and ``verify`` catches every changed byte."""

from __future__ import annotations

import shutil

import pytest

from analysis import load, read_table
from orchestrator.cli import main

SPEC = """
[sweep]
name = "loaders"
seed = 5
lattice_sizes = [4]
temperatures = [2.0, 3.0]
[sampling]
burn_in = 50
samples = 60
thin = 1
"""


@pytest.fixture()
def finished(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
    return out, {name: read_table(out, name) for name in ("ising", "samples", "series")}


def _part(out, table="ising"):
    return sorted((out / table).rglob("part-*.parquet"))[0]


def test_stray_files_are_never_read(finished):
    out, before = finished
    part = _part(out)
    shutil.copy(part, part.parent / "backup.parquet")               # a user's backup copy
    shutil.copy(part, out / "ising" / "part-0123456789abcdef.parquet")  # outside any L<L> folder
    shutil.copy(part, part.parent / "part-0123456789abcdef.parquet")  # no manifest: not a result
    (out / "_tasks" / "notes.json").write_text("{not json")
    (out / "_tasks" / "L4" / "notes.json").write_text("[]")
    (out / "ising" / "L4" / "README").write_text("hello")
    for name, frame in before.items():
        assert read_table(out, name).equals(frame), name
    assert len(load(out).ising) == 2


def test_part_missing_behind_its_manifest_is_named(finished):
    out, _ = finished
    part = _part(out)
    part.unlink()
    with pytest.raises(ValueError, match=f"{part.name} is missing although task .* is committed"):
        read_table(out, "ising")


@pytest.mark.parametrize("table", ["ising", "samples", "series"])
def test_verify_catches_every_flipped_bit(finished, table):
    out, before = finished
    part = _part(out, table)
    original = part.read_bytes()
    step = max(1, len(original) // 40)
    for offset in range(0, len(original), step):
        flipped = bytearray(original)
        flipped[offset] ^= 1 << (offset % 8)
        part.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match="does not match its SHA-256"):
            read_table(out, table, verify=True)
    part.write_bytes(original)
    assert read_table(out, table, verify=True).equals(before[table])


def test_verify_size_catches_truncation(finished):
    out, _ = finished
    part = _part(out)
    part.write_bytes(part.read_bytes()[:-10])
    with pytest.raises(ValueError, match="bytes, its manifest says"):
        read_table(out, "ising", verify="size")


def test_the_plan_record_rule():
    """A plan names at least one task id of 16 lowercase hex digits; anything else is damaged."""
    from contract.layout import plan_problem

    bad = [None, [], 3, {}, {"task_ids": []}, {"task_ids": [1]}, {"task_ids": ["abc"]},
           {"task_ids": ["0123456789ABCDEF"]}]
    assert all(plan_problem(record) for record in bad)
    assert plan_problem({"task_ids": ["0123456789abcdef"]}) is None


def test_an_unreadable_failure_record_is_skipped_with_a_warning(tmp_path, monkeypatch):
    """Failure records are diagnoses without manifests: a garbage one (a driver killed while
    writing it, a bad copy) is skipped with a warning, and the readable ones still load."""
    from orchestrator.plan import make_plan
    from orchestrator.spec import load_spec

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    victim = next(iter(make_plan(load_spec(spec))))
    monkeypatch.setenv("RGSWEEP_FAIL_TASKS", victim.id)
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 1
    good = read_table(out, "failures")
    assert list(good["task_id"]) == [victim.id]
    (out / "failures" / "L4" / "part-0123456789abcdef-1.parquet").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped an unreadable failure record .*part-0123456789abcdef-1"):
        again = read_table(out, "failures")
    assert again.equals(good)
    monkeypatch.delenv("RGSWEEP_FAIL_TASKS")
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0
