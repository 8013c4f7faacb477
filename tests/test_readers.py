"""Every table opens in pandas, pyarrow, polars and duckdb exactly as the README shows: with the
schema's types, and, through the README's one-line filter, with exactly the rows that
``analysis.read_table`` returns (the current plan's). A dataset in the old ``L=<L>`` layout is read
as it is, and the next run moves it over without recomputing anything."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from analysis import read_table
from contract.schemas import SCHEMAS, TIMING_COLUMNS
from orchestrator.cli import main

pytest.importorskip("polars")
pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parent.parent
SPEC = """
[sweep]
name = "readers"
seed = 11
lattice_sizes = [4, 8]
temperatures = %s

[sampling]
algorithm = "wolff"
burn_in = 100
samples = 200
thin = 2

[rbm]
n_hidden = [3]
method = "cd"
epochs = 2
batch_size = 50
checkpoints = [0, 2]
seeds = [0]

[rg_flow]
layers = ["N/4", "N/16"]
rbm_flow_steps = 3
epochs = 3
"""
TABLES = [t for t in SCHEMAS if t != "failures"]  # a clean run records no failure


def _run(spec: Path, out: Path, temperatures: str) -> None:
    spec.write_text(SPEC % temperatures)
    assert main(["run", str(spec), "--out", str(out), "--backend", "serial", "--quiet"]) == 0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Run with four temperatures, then with three: T = 2.6 is left on disk as stale rows."""
    root = tmp_path_factory.mktemp("readers")
    out = root / "out"
    _run(root / "spec.toml", out, "[1.8, 2.2, 2.6, 3.0]")
    _run(root / "spec.toml", out, "[1.8, 2.2, 3.0]")
    return out


def _readme_snippets() -> tuple[str, dict[str, str]]:
    """The README's setup line and its one-liner per reader (keyed by the module it imports)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Reading the tables with other tools", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    readers = {re.match(r"import (\w+)", b).group(1): b for b in blocks[1:]}
    assert set(readers) == {"pandas", "pyarrow", "polars", "duckdb"}, readers
    return blocks[0], readers


def _read(out: Path, table: str, reader: str):
    setup, readers = _readme_snippets()
    namespace = {"OUT": str(out)}
    exec(setup, namespace)
    exec(readers[reader].replace("/rbm", f"/{table}"), namespace)
    return namespace["table" if reader == "pyarrow" else "df"]


@pytest.mark.parametrize("reader", ["pandas", "pyarrow", "polars", "duckdb"])
def test_every_table_opens_directly_with_its_types_and_the_current_rows(dataset, reader):
    for table in TABLES:
        got = _read(dataset, table, reader)
        want = read_table(dataset, table)
        assert len(want) > 0, table
        if reader == "pyarrow":
            assert [(f.name, f.type) for f in got.schema] == [(f.name, f.type) for f in SCHEMAS[table]]
            frame = got.to_pandas()
        elif reader == "polars":
            assert str(got.schema["L"]) == "Int32" and str(got.schema["T"]) == "Float64", table
            frame = got.to_pandas()
        else:
            frame = got
        assert sorted(frame.columns) == sorted(SCHEMAS[table].names), (table, reader)
        assert frame["L"].dtype == "int32" and frame["T"].dtype == "float64", (table, reader)
        assert Counter(frame["task_id"]) == Counter(want["task_id"]), (table, reader)
        numeric = [c for c in ("e", "kl_per_spin", "eigenvalue", "score") if c in frame]
        for column in numeric:  # the same values, not just the same ids
            key = [c for c in ("task_id", "epoch", "rank", "unit", "block", "chain", "step", "kind", "level")
                   if c in frame]
            a = frame.sort_values(key)[column].to_numpy()
            b = want.sort_values(key)[column].to_numpy()
            assert ((a == b) | (pd.isna(a) & pd.isna(b))).all(), (table, reader, column)


def test_without_the_filter_a_reader_also_sees_the_stale_rows(dataset):
    everything = pd.read_parquet(dataset / "ising")
    current = read_table(dataset, "ising")
    assert sorted(everything["T"].unique()) == [1.8, 2.2, 2.6, 3.0]
    assert sorted(current["T"].unique()) == [1.8, 2.2, 3.0]


def _legacy_copy(dataset: Path, old: Path) -> Path:
    """The dataset as layout 1 wrote it: L=<L> folders, manifests that record L=<L>/ paths."""
    shutil.copytree(dataset, old)
    for folder in sorted(old.glob("*/L*")):
        folder.rename(folder.with_name(f"L={folder.name[1:]}"))
    for manifest in (old / "_tasks").rglob("*.json"):
        record = json.loads(manifest.read_text())
        for part in record["parts"].values():
            part["path"] = re.sub(r"/L(\d+)/", r"/L=\1/", part["path"])
        manifest.write_text(json.dumps(record, indent=1, sort_keys=True))
    return old


def test_a_dataset_in_the_old_layout_is_read_and_moved_by_the_next_run(dataset, tmp_path, capsys):
    old = _legacy_copy(dataset, tmp_path / "old")
    manifests = {p.relative_to(old / "_tasks" / p.parent.name): p.read_bytes()
                 for p in (old / "_tasks").rglob("*.json")}
    with pytest.raises(pa.ArrowTypeError, match="Field L has incompatible types"):
        pd.read_parquet(old / "ising")  # why the layout changed
    for table in TABLES:
        pd.testing.assert_frame_equal(read_table(old, table), read_table(dataset, table))
    capsys.readouterr()
    _run(tmp_path / "spec.toml", old, "[1.8, 2.2, 3.0]")
    out, err = capsys.readouterr()
    assert "0 run" in out and "0 damaged" in out and "set aside" in err and re.search(r"moved \d+ files", err)
    assert not list(old.glob("*/L=*")), "every L=<L> folder was emptied and removed"
    assert {p.relative_to(old / "_tasks" / p.parent.name): p.read_bytes()
            for p in (old / "_tasks").rglob("*.json")} == manifests
    for table in TABLES:
        pd.testing.assert_frame_equal(read_table(old, table), read_table(dataset, table))
    assert len(pd.read_parquet(old / "ising")) == len(pd.read_parquet(dataset / "ising"))


def _doc_tables() -> dict[str, list[tuple[str, str, str, str]]]:
    """docs/tables.md: {table: [(column, type, unit, meaning), ...]} from each table's section."""
    text = (ROOT / "docs" / "tables.md").read_text()
    found = {}
    for name, body in re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        rows = [line for line in body.splitlines() if line.startswith("| `")]
        found[name] = [tuple(cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]) for row in rows]
    return found


def test_docs_tables_list_every_column_of_every_table_with_its_type_unit_and_meaning():
    doc = _doc_tables()
    assert [t for t in doc if t in SCHEMAS] == list(SCHEMAS)
    for table, schema in SCHEMAS.items():
        rows = doc[table]
        assert [r[0] for r in rows] == [f"`{n}`" for n in schema.names], table
        assert [r[1] for r in rows] == [str(f.type) for f in schema], table
        assert all(len(r) == 4 and r[2] and len(r[3]) > 10 for r in rows), table


def test_the_documented_numpy_recipe_decodes_the_spins(dataset):
    text = (ROOT / "docs" / "tables.md").read_text().split("## Decoding `samples.spins`", 1)[1]
    recipe = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    samples = pd.read_parquet(dataset / "samples")
    from analysis import load
    ds = load(dataset)
    for task_id in ds.ising["task_id"][:3]:
        namespace = {"s": samples[samples.task_id == task_id].sample(frac=1.0, random_state=0)}
        exec(recipe, namespace)
        L = int(namespace["L"])
        assert (namespace["configs"] == ds.configurations(L, task_id=task_id)).all()
        assert namespace["configs"].shape[1:] == (L, L) and set(namespace["configs"].ravel()) <= {-1, 1}


def test_configurations_match_a_stored_temperature_or_name_the_nearest(dataset):
    from analysis import load
    ds = load(dataset)
    exact = ds.configurations(4, T=2.2)
    assert (ds.configurations(4, T=2.2 + 1e-9) == exact).all() and exact.shape[1:] == (4, 4)
    with pytest.raises(KeyError, match=r"no samples stored for L = 4 at T = 99; the nearest is T = 3 "):
        ds.configurations(4, T=99)
    with pytest.raises(KeyError, match=r"at T = 2.6; the nearest is T = (2.2|3) \(stored: 1.8, 2.2, 3\)"):
        ds.configurations(4, T=2.6)  # stale: on disk, not in the current plan


def test_dry_run_tells_done_new_and_stale_and_writes_nothing(dataset, tmp_path, capsys):
    from orchestrator.dryrun import task_states
    from orchestrator.plan import make_plan
    from orchestrator.spec import load_spec
    from orchestrator.store import Store

    before = {p: p.stat().st_mtime_ns for p in dataset.rglob("*")}
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC % "[1.8, 2.2, 2.4, 2.6, 3.0]")  # 2.6: on disk but stale; 2.4: new
    states, stale = task_states(make_plan(load_spec(spec)), Store(dataset))
    plan = make_plan(load_spec(spec))
    new_T = {round(t.T, 6) for t in plan if states[t.id] == "new" and t.kind != "flow"}
    assert new_T == {2.4}  # the T = 2.6 results on disk are done for this spec, not stale
    # the flow tasks of L = 8 of both earlier temperature sets, (4 levels + the pool) and (3 + 1):
    # each is matched against (levels) or trained on (pool) every temperature of L
    assert stale == {"flow": 5 + 4}
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(dataset), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "nothing written" in text and " new" in text and "2.4" in text
    spec.write_text(SPEC % "[1.8, 2.2, 3.0]")
    states, stale = task_states(make_plan(load_spec(spec)), Store(dataset))
    assert set(states.values()) == {"done"} and stale == {"sample": 2, "train": 2, "flow": 4 + 1}
    assert {p: p.stat().st_mtime_ns for p in dataset.rglob("*")} == before


def test_the_move_never_loses_a_file_links_collisions_and_read_only_folders(dataset, tmp_path, capsys):
    old = _legacy_copy(dataset, tmp_path / "old")
    (old / "ising" / "L4").symlink_to("L=4")  # a bridge a user made: the same files under both names
    twin = sorted((old / "series" / "L=8").glob("part-*"))[0]
    (old / "series" / "L8").mkdir()
    shutil.copy2(twin, old / "series" / "L8" / twin.name)  # an interrupted move's identical copy
    other = sorted((old / "samples" / "L=8").glob("part-*"))[0]
    (old / "samples" / "L8").mkdir()
    (old / "samples" / "L8" / other.name).write_bytes(b"not the same")  # something else is there
    before = other.read_bytes()
    capsys.readouterr()
    _run(tmp_path / "spec.toml", old, "[1.8, 2.2, 3.0]")
    out, err = capsys.readouterr()
    assert "moved" in err and re.search(r"[1-9]\d* set aside", err) and re.search(r"[1-9]\d* left", err)
    assert (old / "ising" / "L4").is_symlink() and list((old / "ising" / "L=4").glob("part-*"))
    assert not (old / "series" / "L=8" / twin.name).exists() and (old / "series" / "L8" / twin.name).exists()
    # both files of the collision are kept: the old part set aside, the stranger quarantined by the
    # run's check against the manifest, and the task recomputed (nothing deleted)
    kept = sorted(p.read_bytes() for p in (old / "_damaged").rglob(other.name) if "samples" in str(p))
    assert kept == sorted([before, b"not the same"])
    for table in TABLES:  # every result still read, whatever was moved, left or set aside
        a, b = read_table(old, table), read_table(dataset, table)
        timing = [c for c in a.columns if c in TIMING_COLUMNS]  # the recomputed task's clock differs
        pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    assert main(["status", str(old)]) == 0


def test_a_file_that_cannot_be_moved_stays_readable_where_it_is(dataset, tmp_path):
    """A folder the user may not change (simulated: root ignores permissions) leaves its files in
    the old layout; the run goes on and every reader still finds them."""
    from orchestrator.migrate import migrate_layout
    from orchestrator.store import Store

    old = _legacy_copy(dataset, tmp_path / "old")
    store = Store(old)

    class NoMoves:
        def __init__(self, fs):
            self._fs = fs

        def __getattr__(self, name):
            return getattr(self._fs, name)

        def move(self, src, dest):
            if "/rbm/" in src:
                raise PermissionError(13, "Permission denied", src)
            return self._fs.move(src, dest)

    store.fs = NoMoves(store.fs)
    counts = migrate_layout(store)
    assert counts["left"] == len(list((old / "rbm").rglob("part-*"))) > 0 and counts["moved"] > 0
    for table in TABLES:
        pd.testing.assert_frame_equal(read_table(old, table), read_table(dataset, table))
    assert main(["status", str(old)]) == 0
