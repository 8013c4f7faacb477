"""Tidy pandas access to an rgsweep dataset, from the Parquet files alone.

Works on any copy of ``OUT`` (a local folder, results synced back from a cluster, ``s3://…``)
and on partial results: a table with no parts yet is an empty DataFrame with no rows.
Every row already carries its task id, L, T and config fields, so no joins are needed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from orchestrator.schemas import plan_problem

__all__ = ["TABLES", "committed_tasks", "planned_tasks", "current_tasks", "read_table",
           "read_part", "load", "Dataset", "unpack_spins"]

TABLES = ("ising", "samples", "series", "rbm", "rbm_params", "free_energy", "spectra",
          "rg_alignment", "transport", "rg_flow", "failures")


def _fs_root(out: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    out = str(out)
    if "://" in out:
        fs, root = pafs.FileSystem.from_uri(out)
        return fs, root.rstrip("/")
    return pafs.LocalFileSystem(), str(Path(out).resolve())


def committed_tasks(out: str | os.PathLike) -> set[str]:
    """Ids of the tasks whose manifest (``_tasks/L=*/<kind>-<id>.json``) exists: the results."""
    fs, root = _fs_root(out)
    base = f"{root}/_tasks"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return set()
    return {info.base_name.rsplit("-", 1)[1][:-5]
            for info in fs.get_file_info(pafs.FileSelector(base, recursive=True))
            if info.type == pafs.FileType.File and info.base_name.endswith(".json")}


def planned_tasks(out: str | os.PathLike) -> set[str] | None:
    """Task ids of the spec and code that last ran on OUT (``plan.json``); None if not recorded.

    Finished tasks outside this set are stale: results of an earlier spec, or of an earlier
    version of the code that computes their kind. They stay on disk, untouched.
    """
    fs, root = _fs_root(out)
    path = f"{root}/plan.json"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        with fs.open_input_stream(path) as f:
            record = json.loads(f.read(256 * 2**20 + 1).decode())
        why = plan_problem(record)
    except (ValueError, UnicodeDecodeError) as err:
        why = f"is not JSON: {err}"
    if why:
        raise ValueError(f"{path} is damaged (it {why}); rerun `rgsweep run SPEC --out {out}` with "
                         "the sweep's spec to rebuild it, or read with stale=True")
    return set(record["task_ids"])


def current_tasks(out: str | os.PathLike, stale: bool = False) -> set[str]:
    """Ids of the tasks whose results the loaders return: committed, and (unless ``stale``) in
    the last run's plan."""
    current = committed_tasks(out)
    planned = None if stale else planned_tasks(out)
    return current if planned is None else current & planned


def read_part(out: str | os.PathLike, name: str, L: int, task_id: str) -> pd.DataFrame:
    """The one part of table ``name`` that task ``task_id`` wrote (layout: README, "The dataset"), as is.

    For many small reads of one table (a run at a time) where :func:`read_table`'s discovery
    of the whole table on every call would dominate; the caller picks committed ids. A part
    that is not there (a table not copied with the rest) reads as an empty DataFrame.
    """
    fs, root = _fs_root(out)
    path = f"{root}/{name}/L={int(L)}/part-{task_id}.parquet"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return pd.DataFrame()
    return pq.read_table(path, filesystem=fs).to_pandas()


def read_table(out: str | os.PathLike, name: str, filters=None, columns: list[str] | None = None,
               stale: bool = False) -> pd.DataFrame:
    """One table of the dataset as a DataFrame.

    Parameters
    ----------
    out : path or URI of the dataset (``OUT``).
    name : table name, one of :data:`TABLES`.
    filters : optional pyarrow filters in the DNF list form, e.g. ``[("L", "=", 16)]``,
        or a ``pyarrow.compute.Expression``.
    columns : optional subset of columns.
    stale : also return results of tasks the last run's plan no longer has (an earlier spec or
        code version; see :func:`planned_tasks`). Off by default, so that a changed spec or
        an upgrade never mixes old results with new ones.
    """
    if name not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)}, got {name!r}")
    fs, root = _fs_root(out)
    base = f"{root}/{name}"
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return pd.DataFrame(columns=columns or [])
    # Dot-files (in-progress atomic writes) are ignored by pyarrow's discovery; parts of a task
    # without a manifest (a driver stopped mid-task) are not results and are filtered out.
    dataset = ds.dataset(base, format="parquet", filesystem=fs, partitioning=None)
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    if name != "failures":
        ids = pa.array(sorted(current_tasks(out, stale)), type=pa.string())
        committed = pc.field("task_id").isin(ids)
        expr = committed if expr is None else expr & committed
    table = dataset.to_table(filter=expr, columns=columns)
    frame = table.to_pandas()
    sort = [c for c in ("L", "T", "task_id", "epoch", "index", "chain", "step", "rank", "unit", "block")
            if c in frame.columns]
    return frame.sort_values(sort, kind="stable").reset_index(drop=True) if sort else frame


def unpack_spins(spins, L: int) -> np.ndarray:
    """The ``samples.spins`` column (1 bit per spin) as an int8 array (n, L, L) of +-1."""
    rows = [np.frombuffer(b, dtype=np.uint8) for b in spins]
    if not rows:
        return np.empty((0, L, L), dtype=np.int8)
    bits = np.unpackbits(np.stack(rows), axis=1, count=L * L)
    return (2 * bits.astype(np.int8) - 1).reshape(-1, L, L)


@dataclass
class Dataset:
    """A dataset folder; tables load on first access (``ds.ising``, ``ds.table("series")``)."""

    out: str

    def table(self, name: str, filters=None, columns=None, stale: bool = False) -> pd.DataFrame:
        return read_table(self.out, name, filters=filters, columns=columns, stale=stale)

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self.table(name)
        raise AttributeError(name)

    @property
    def sweep(self) -> dict:
        fs, root = _fs_root(self.out)
        with fs.open_input_stream(f"{root}/sweep.json") as f:
            return json.loads(f.read().decode())

    def configurations(self, L: int, T: float | None = None, task_id: str | None = None) -> np.ndarray:
        """Stored configurations (n, L, L) of one sample task, chosen by task id or (L, T)."""
        filters = [("L", "=", L)] + ([("task_id", "=", task_id)] if task_id else [])
        frame = self.table("samples", filters=filters)
        if T is not None:
            temps = frame["T"].unique()
            if len(temps) == 0:
                raise KeyError(f"no samples stored for L = {L}")
            nearest = temps[np.argmin(np.abs(temps - T))]
            frame = frame[frame["T"] == nearest]
        return unpack_spins(frame.sort_values("index")["spins"], L)


def load(out: str | os.PathLike) -> Dataset:
    """The dataset at ``out``: ``load(OUT).ising`` is the ``ising`` table as a DataFrame."""
    return Dataset(str(out))
