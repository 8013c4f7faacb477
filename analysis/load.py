"""Tidy pandas access to an rgsweep dataset, from the Parquet files alone.

Works on any copy of ``OUT`` (a local folder, results synced back from a cluster, ``s3://…``)
and on partial results: a table with no parts yet is an empty DataFrame with no rows.
Every row already carries its task id, L, T and config fields, so no joins are needed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contract import layout
from contract.layout import FAILURE_PART, filesystem, lattice_of, listing, plan_problem
from contract.schemas import TABLES, TASK_TABLES

__all__ = ["TABLES", "committed_index", "committed_tasks", "planned_tasks", "current_tasks", "read_table",
           "read_part", "load", "Dataset", "unpack_spins", "T_TOLERANCE"]

#: How far a requested T may lie from a stored one (temperatures are stored as the spec gives them).
T_TOLERANCE = 1e-6


def committed_index(out: str | os.PathLike) -> dict[str, tuple[str, int, str]]:
    """Every committed task: ``{task id: (kind, L, manifest path)}`` from the names of the
    manifests ``_tasks/L<L>/<kind>-<id>.json``; other files there are ignored."""
    return layout.manifest_index(*filesystem(out))


def committed_tasks(out: str | os.PathLike) -> set[str]:
    """Ids of the tasks whose manifest (``_tasks/L*/<kind>-<id>.json``) exists: the results."""
    return set(committed_index(out))


def planned_tasks(out: str | os.PathLike) -> set[str] | None:
    """Task ids of the spec and code that last ran on OUT (``plan.json``); None if not recorded.

    Finished tasks outside this set are stale: results of an earlier spec, or of an earlier
    version of the code that computes their kind. They stay on disk, untouched.
    """
    fs, root = filesystem(out)
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


def _task_parts(out, fs: pafs.FileSystem, root: str, name: str, stale: bool,
                verify: bool | str) -> list[str]:
    """The part files of table ``name`` that the loaders read: one per current committed task
    whose kind writes the table, at the path derived from (table, L, id). A part missing behind
    its manifest, or (``verify``) differing from it, is an error naming the file."""
    index = committed_index(out)  # one listing of _tasks serves the ids and the layout
    planned = None if stale else planned_tasks(out)
    keep = set(index) if planned is None else set(index) & planned
    present = {i.path: i.size for i in listing(fs, f"{root}/{name}")}
    files = []
    for task_id in sorted(keep):
        kind, L, manifest = index[task_id]
        if name not in TASK_TABLES[kind]:
            continue
        path = layout.part_path(root, name, L, task_id)
        if path not in present and layout.legacy_twin(path) in present:  # layout 1, not yet moved
            path = layout.legacy_twin(path)
        if path not in present:
            raise ValueError(f"{path} is missing although task {task_id} is committed; the next "
                             "`rgsweep run` moves the task aside and recomputes it")
        if verify:
            _verify_part(fs, manifest, name, path, present[path], full=verify is True)
        files.append(path)
    return files


def _verify_part(fs, manifest: str, name: str, path: str, size: int, full: bool) -> None:
    try:
        with fs.open_input_stream(manifest) as f:
            part = json.loads(f.read().decode())["parts"][name]
        want_size, want_sha = int(part["size"]), str(part["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{manifest} is damaged ({type(err).__name__}: {err}); the next "
                         "`rgsweep run` moves the task aside and recomputes it") from None
    if size != want_size:
        raise ValueError(f"{path} has {size} bytes, its manifest says {want_size} (truncated or "
                         "overwritten); the next `rgsweep run` recomputes it")
    if full:
        with fs.open_input_stream(path) as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != want_sha:
            raise ValueError(f"{path} does not match its SHA-256 (corrupted); the next "
                             "`rgsweep run` recomputes it")


def read_part(out: str | os.PathLike, name: str, L: int, task_id: str) -> pd.DataFrame:
    """The one part of table ``name`` that task ``task_id`` wrote (layout: README, "The dataset"), as is.

    For many small reads of one table (a run at a time) where :func:`read_table`'s discovery
    of the whole table on every call would dominate; the caller picks committed ids. A part
    that is not there (a table not copied with the rest) reads as an empty DataFrame.
    """
    fs, root = filesystem(out)
    path = layout.part_path(root, name, L, task_id)
    if fs.get_file_info(path).type != pafs.FileType.File:
        path = layout.legacy_twin(path)  # layout 1 (``L=<L>`` folders), not yet moved
    if fs.get_file_info(path).type != pafs.FileType.File:
        return pd.DataFrame()
    return pq.read_table(path, filesystem=fs).to_pandas()


def _readable_record(fs, path: str) -> bool:
    """A failure record is a diagnosis, not a result: one that cannot be read (a crash while a
    driver wrote it, a copy gone wrong) is skipped with a warning instead of hiding the others."""
    try:
        pq.read_schema(path, filesystem=fs)
        return True
    except (OSError, ValueError) as err:  # ArrowInvalid is a ValueError
        warnings.warn(f"skipped an unreadable failure record {path}: {str(err).splitlines()[0]}",
                      stacklevel=3)
        return False


def read_table(out: str | os.PathLike, name: str, filters=None, columns: list[str] | None = None,
               stale: bool = False, verify: bool | str = False) -> pd.DataFrame:
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
    verify : ``"size"`` checks each part's size against its task's manifest, ``True`` also its
        SHA-256 (reads every byte twice); a mismatch is a one-line ``ValueError``. Off by default.
    """
    if name not in TABLES:
        raise ValueError(f"table must be one of {', '.join(TABLES)}, got {name!r}")
    fs, root = filesystem(out)
    if fs.get_file_info(f"{root}/{name}").type != pafs.FileType.Directory:
        return pd.DataFrame(columns=columns or [])  # a table not written (or not copied) at all
    if name == "failures":  # not committed by manifests: every well-named failure part
        files = sorted(i.path for i in listing(fs, f"{root}/{name}")
                       if FAILURE_PART.fullmatch(i.base_name) and lattice_of(i.path) is not None)
        files = [f for f in files if _readable_record(fs, f)]
    else:
        files = _task_parts(out, fs, root, name, stale, verify)
    if not files:
        return pd.DataFrame(columns=columns or [])
    # Exactly the committed parts: stray files (a backup copy, notes, parts of a task stopped
    # before its manifest) are never read.
    dataset = ds.dataset(files, format="parquet", filesystem=fs)
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    table = dataset.to_table(filter=expr, columns=columns)
    frame = table.to_pandas()
    sort = [c for c in ("L", "T", "task_id", "epoch", "index", "chain", "step", "rank", "unit", "block")
            if c in frame.columns]
    return frame.sort_values(sort, kind="stable").reset_index(drop=True) if sort else frame


def unpack_spins(spins, L: int) -> np.ndarray:
    """The ``samples.spins`` column (1 bit per spin) as an int8 array (n, L, L) of +-1."""
    return layout.unpack_spins(list(spins), L * L).reshape(-1, L, L)


@dataclass
class Dataset:
    """A dataset folder; tables load on first access (``ds.ising``, ``ds.table("series")``)."""

    out: str

    def table(self, name: str, filters=None, columns=None, stale: bool = False,
              verify: bool | str = False) -> pd.DataFrame:
        return read_table(self.out, name, filters=filters, columns=columns, stale=stale, verify=verify)

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name in TABLES:
            return self.table(name)
        raise AttributeError(name)

    @property
    def sweep(self) -> dict:
        fs, root = filesystem(self.out)
        with fs.open_input_stream(f"{root}/sweep.json") as f:
            return json.loads(f.read().decode())

    def configurations(self, L: int, T: float | None = None, task_id: str | None = None) -> np.ndarray:
        """Stored configurations (n, L, L) of one sample task, chosen by task id or (L, T); T must
        match a stored temperature within :data:`T_TOLERANCE` (else KeyError naming the nearest)."""
        filters = [("L", "=", L)] + ([("task_id", "=", task_id)] if task_id else [])
        frame = self.table("samples", filters=filters)
        if T is not None:
            temps = frame["T"].unique()
            if len(temps) == 0:
                raise KeyError(f"no samples stored for L = {L}")
            nearest = temps[np.argmin(np.abs(temps - T))]
            if abs(nearest - T) > T_TOLERANCE:
                raise KeyError(f"no samples stored for L = {L} at T = {T:.10g}; the nearest is "
                               f"T = {nearest:.10g} (stored: {', '.join(f'{t:.10g}' for t in sorted(temps))})")
            frame = frame[frame["T"] == nearest]
        return unpack_spins(frame.sort_values("index")["spins"], L)


def load(out: str | os.PathLike) -> Dataset:
    """The dataset at ``out``: ``load(OUT).ising`` is the ``ising`` table as a DataFrame."""
    return Dataset(str(out))
