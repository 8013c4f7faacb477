"""The dataset's layout on disk: where every file of OUT lives, and how spins are packed.

The one definition that the writer (``orchestrator.store``) and the readers (``analysis.load``)
share::

    OUT/sweep.json                                  validated spec, versions, schema, history
    OUT/plan.json                                   task ids of the last run's spec and code
    OUT/refine.json                                 the rounds of an adaptive sweep ([refine])
    OUT/<table>/L<L>/part-<task_id>.parquet         one file per task per table
    OUT/failures/L<L>/part-<task_id>-<attempt>.parquet
    OUT/_tasks/L<L>/<kind>-<task_id>.json           the task's manifest: its parts, sizes, SHA-256
    OUT/_damaged/<when>/...                         parts found damaged, moved aside (never deleted)
    OUT/.rgsweep.lock                               held by the one driver writing to OUT

Every path is derived from (table or kind, L, task id): a name that does not fit these patterns
is not part of the dataset.  The folders are ``L8``, not Hive-style ``L=8``: every part file
carries its ``L`` column, and a Hive folder of the same name makes pandas and pyarrow refuse
to merge the two types.  Datasets written before (``L=<L>`` folders, layout 1) are read as
they are and moved to this layout by the next ``rgsweep run`` (:data:`LEGACY_FOLDER`).  ``samples.spins`` holds one configuration per row, 1 bit per spin.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs

__all__ = ["MANIFESTS", "DAMAGED", "LOCK", "PART", "MANIFEST", "FAILURE_PART", "TEMPORARY",
           "TASK_ID", "LEGACY_FOLDER", "filesystem", "folder", "part_path", "manifest_path",
           "lattice_of", "legacy_twin", "listing", "manifest_index",
           "plan_problem", "refine_key", "refine_problem", "sweep_problem", "pack_spins", "unpack_spins", "samples_array"]

MANIFESTS, DAMAGED, LOCK = "_tasks", "_damaged", ".rgsweep.lock"
TASK_ID = re.compile(r"[0-9a-f]{16}")
#: ``part-<id>.parquet``, or ``part-<id>-<attempt>.parquet`` for a failure record.
PART = re.compile(r"part-([0-9a-f]{16})(?:-(\d+))?\.parquet")
FAILURE_PART = re.compile(r"part-[0-9a-f]{16}-\d+\.parquet")
MANIFEST = re.compile(r"(sample|train|flow)-([0-9a-f]{16})\.json")
#: The temporary files of an atomic write: ``.<final name>.<32 hex digits>.tmp``.
TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")
#: The per-L folder of layout 1 (``L=8``); today's is ``L8`` (:func:`folder`).
LEGACY_FOLDER = re.compile(r"L=(\d+)")
_FOLDER = re.compile(r"L(\d+)")


def filesystem(out: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """OUT as (pyarrow filesystem, root path without a trailing slash): a URI such as
    ``s3://bucket/run`` or a local path (made absolute)."""
    out = str(out)
    if "://" in out:
        fs, root = pafs.FileSystem.from_uri(out)
        return fs, root.rstrip("/")
    return pafs.LocalFileSystem(), str(Path(out).resolve())


def folder(L: int) -> str:
    """The folder of lattice size L inside a table or ``_tasks``: ``L8``."""
    return f"L{int(L)}"


def part_path(root: str, table: str, L: int, task_id: str, attempt: int | None = None) -> str:
    """``<root>/<table>/L<L>/part-<id>[-<attempt>].parquet`` (``root`` "" gives it relative)."""
    suffix = f"-{attempt}" if attempt is not None else ""
    relative = f"{table}/{folder(L)}/part-{task_id}{suffix}.parquet"
    return f"{root}/{relative}" if root else relative


def manifest_path(root: str, kind: str, L: int, task_id: str) -> str:
    """``<root>/_tasks/L<L>/<kind>-<id>.json``: the file whose existence commits a task (``root``
    "" gives it relative)."""
    relative = f"{MANIFESTS}/{folder(L)}/{kind}-{task_id}.json"
    return f"{root}/{relative}" if root else relative


def _parent(path: str) -> str:
    return path.rsplit("/", 2)[-2] if path.count("/") >= 2 else ""


def lattice_of(path: str) -> int | None:
    """L of a file in an ``L<L>`` folder (or a layout-1 ``L=<L>`` one), None if its folder is
    neither."""
    match = _FOLDER.fullmatch(_parent(path)) or LEGACY_FOLDER.fullmatch(_parent(path))
    return int(match.group(1)) if match else None


def legacy_twin(path: str) -> str | None:
    """Where a file of today's layout lived in layout 1 (``.../L8/x`` -> ``.../L=8/x``), or the
    reverse for a layout-1 path; None for a path in neither kind of folder."""
    if path.count("/") < 2:
        return None
    head, parent, name = path.rsplit("/", 2)
    if _FOLDER.fullmatch(parent):
        return f"{head}/L={parent[1:]}/{name}"
    if LEGACY_FOLDER.fullmatch(parent):
        return f"{head}/L{parent[2:]}/{name}"
    return None


def listing(fs: pafs.FileSystem, base: str) -> list[pafs.FileInfo]:
    """Every file under ``base`` (recursively); nothing if ``base`` is not a folder."""
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return []
    return [i for i in fs.get_file_info(pafs.FileSelector(base, recursive=True))
            if i.type == pafs.FileType.File]


def manifest_index(fs: pafs.FileSystem, root: str) -> dict[str, tuple[str, int, str]]:
    """Every committed task, ``{task id: (kind, L, manifest path)}``, from one listing of
    ``_tasks/`` (files of other names are ignored). Where a layout-1 ``L=<L>`` twin of a manifest
    is still there, today's ``L<L>`` one wins, whatever the listing order."""
    found = {}
    for info in listing(fs, f"{root}/{MANIFESTS}"):
        match, L = MANIFEST.fullmatch(info.base_name), lattice_of(info.path)
        if match and L is not None:
            kind, task_id = match.groups()
            if task_id not in found or info.path == manifest_path(root, kind, L, task_id):
                found[task_id] = (kind, L, info.path)
    return found


def plan_problem(record) -> str | None:
    """Why a ``plan.json`` record is not one (None if it is): a plan names >= 1 task id."""
    if not isinstance(record, dict):
        return f"is {type(record).__name__}, not an object"
    ids = record.get("task_ids")
    if not isinstance(ids, list) or not ids:
        return "has no list of task ids"
    if not all(isinstance(i, str) and TASK_ID.fullmatch(i) for i in ids):
        return "has task ids that are not 16 hex digits"
    return None


def refine_key(spec: dict) -> str:
    """What the rounds of ``[refine]`` depend on, from a spec as ``sweep.json`` records it: the
    grid, sizes, sampling, seed, target and points per round (not precision, max_rounds or the
    budget, which only decide where they stop); ``refine.json`` carries it."""
    import hashlib
    import json

    basis = {"sweep": {k: spec["sweep"][k] for k in ("seed", "lattice_sizes", "temperatures")},
             "sampling": spec["sampling"],
             "refine": {k: spec["refine"][k] for k in ("target", "points_per_round")}}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def refine_problem(record) -> str | None:
    """Why a ``refine.json`` record is not one (None if it is): a key and a list of rounds, each
    with its number and the temperatures it added by lattice size."""
    if not isinstance(record, dict):
        return f"is {type(record).__name__}, not an object"
    rounds = record.get("rounds")
    if not isinstance(record.get("key"), str) or not isinstance(rounds, list) or not rounds:
        return "has no key or no list of rounds"
    for i, r in enumerate(rounds):
        if not (isinstance(r, dict) and r.get("round") == i and isinstance(r.get("added"), dict)
                and all(str(L).isdigit() and isinstance(t, list)
                        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in t)
                        for L, t in r["added"].items())):
            return f"has a round {i} that is not a round number with its added temperatures"
    return None


def sweep_problem(record) -> str | None:
    """Why a ``sweep.json`` record is not one (None if it is); the spec inside is validated by
    whoever parses it."""
    if not isinstance(record, dict):
        return f"is {type(record).__name__}, not an object"
    if not isinstance(record.get("spec"), dict):
        return "has no spec"
    if not isinstance(record.get("history", []), list):
        return "has a history that is not a list"
    return None


def pack_spins(samples: np.ndarray) -> list[bytes]:
    """Configurations (n, N) int8 +-1 -> one ``bytes`` per row, 1 bit per spin (+1 -> bit 1).

    Bits are in site order i = row*L + col, most significant bit first (``numpy.packbits``).
    """
    bits = np.packbits(np.asarray(samples) > 0, axis=1)
    return [row.tobytes() for row in bits]


def unpack_spins(packed, n_sites: int) -> np.ndarray:
    """Inverse of :func:`pack_spins`: a sequence of ``bytes`` -> (n, n_sites) int8 +-1."""
    rows = [np.frombuffer(b, dtype=np.uint8) for b in packed]
    if not rows:
        return np.empty((0, n_sites), dtype=np.int8)
    bits = np.unpackbits(np.stack(rows), axis=1, count=n_sites)
    return (2 * bits.astype(np.int8) - 1).astype(np.int8)


def samples_array(samples, n_sites: int) -> np.ndarray:
    """A ``samples`` table (pyarrow; index, spins packed) -> (n, n_sites) int8 +-1 in stored order."""
    order = np.argsort(np.asarray(samples.column("index")))
    return unpack_spins(samples.column("spins").to_pylist(), n_sites)[order]
