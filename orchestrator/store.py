"""The dataset on disk: one Parquet part per task per table, written atomically, committed by a manifest.

Where every file lives is :mod:`contract.layout` (shared with the loaders in ``analysis``).
A task is done when its manifest exists.  The manifest is written after all of the task's
parts, so a driver killed half-way leaves parts without a manifest: they are not results (the
loaders skip them) and the retry replaces them.  Every local write goes to a dot-prefixed
temporary file in the same directory, is fsync'ed and then ``os.replace``'d into place, so a
reader never sees half a file.  On object stores (``s3://…``) a single PUT is already atomic.

Before a run, :meth:`Store.verify` checks every committed part against its manifest (present,
same size, same SHA-256); a damaged task's files are moved to ``_damaged/`` and it is recomputed.

Every path the store reads, writes, moves or deletes is derived by this module from (table, L,
task id); a manifest only *describes* its parts, and one whose recorded paths differ from that
derivation is damaged. On a local OUT nothing is written or moved through a symbolic link that
leads outside OUT.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contract.layout import (DAMAGED, LOCK, PART, TEMPORARY, filesystem, lattice_of,
                             legacy_twin, listing, manifest_index, manifest_path, part_path)
from contract.schemas import SCHEMAS, TASK_TABLES

from . import lock

__all__ = ["Store", "StoreError", "LockError", "DamagedRecord", "Manifest", "encode_part"]


class StoreError(RuntimeError):
    """A dataset that cannot be used as asked (bad location, unreadable part)."""


class LockError(StoreError):
    """Another live driver is writing to the same OUT."""


class DamagedRecord(StoreError):
    """``sweep.json`` or ``plan.json`` that cannot be what it claims to be."""


@dataclass(frozen=True)
class Part:
    table: str
    L: int
    task_id: str
    path: str
    size: int


@dataclass(frozen=True)
class Manifest:
    kind: str
    L: int
    task_id: str
    path: str


def encode_part(table: str, task_id: str, data: pa.Table) -> bytes:
    """A table as the bytes of its Parquet part, after checking it against its explicit schema.

    Called where the task ran, so compression happens in parallel in the workers and the
    driver only writes bytes.
    """
    schema = SCHEMAS[table]
    if not data.schema.equals(schema):
        raise StoreError(f"table {table!r} for task {task_id} does not match its schema: "
                         f"got {data.schema.names}, expected {schema.names}")
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _malformed(record, manifest: "Manifest", store: "Store") -> str | None:
    """What is wrong with a manifest's content, or None (see :meth:`Store._check`)."""
    if not isinstance(record, dict) or not isinstance(record.get("parts"), dict):
        return "is not a manifest (no table of parts)"
    for key, expected in (("task_id", manifest.task_id), ("kind", manifest.kind), ("L", manifest.L)):
        if key in record and record[key] != expected:
            return f"says {key} = {record[key]!r}, its name says {expected!r}"
    tables = set(TASK_TABLES.get(manifest.kind, ()))
    if set(record["parts"]) != tables:
        return f"lists tables {sorted(record['parts'])}, a {manifest.kind} task writes {sorted(tables)}"
    for name, part in record["parts"].items():
        if not isinstance(part, dict):
            return f"part {name!r} is not a table"
        expected = store.relative_part_path(name, manifest.L, manifest.task_id)
        if part.get("path") not in (expected, legacy_twin(expected)):  # layout 1 recorded L=<L>
            return f"part {name!r} points at {part.get('path')!r}, not {expected!r}"
        size = part.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return f"part {name!r} has no valid size"
        if not isinstance(part.get("sha256"), str) or not _SHA256.match(part["sha256"]):
            return f"part {name!r} has no valid SHA-256"
    return None


class Store:
    """One output dataset, on a local path or any filesystem URI pyarrow understands."""

    def __init__(self, out: str | os.PathLike):
        self.fs, self.root = filesystem(out)
        self.uri = str(out)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    # -- paths and listings ----------------------------------------------------------------

    def part_path(self, table: str, L: int, task_id: str, attempt: int | None = None) -> str:
        return part_path(self.root, table, L, task_id, attempt)

    def manifest_path(self, kind: str, L: int, task_id: str) -> str:
        return manifest_path(self.root, kind, L, task_id)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory

    def _files(self, sub: str) -> list[pafs.FileInfo]:
        return listing(self.fs, f"{self.root}/{sub}")

    def parts(self, table: str) -> list[Part]:
        """All part files of one table (one listing per table, not per task)."""
        found = []
        for info in self._files(table):
            match, L = PART.fullmatch(info.base_name), lattice_of(info.path)
            if match and L is not None:
                found.append(Part(table, L, match.group(1), info.path, info.size))
        return found

    def manifests(self) -> dict[str, Manifest]:
        """Every committed task, from one listing of ``_tasks/``."""
        return {task_id: Manifest(kind, L, task_id, path)
                for task_id, (kind, L, path) in manifest_index(self.fs, self.root).items()}

    # -- writing ---------------------------------------------------------------------------

    def inside(self, path: str) -> bool:
        """True unless writing or renaming the file ``path`` (local) would act outside OUT through
        a symbolic link: the deepest existing ancestor of its *folder* must resolve inside the
        resolved OUT. The file itself may be a link: ``os.replace`` and a rename act on the link,
        never on what it points at. Object stores have no links: always True there."""
        if not self.local:
            return True
        root = os.path.realpath(self.root)
        probe = os.path.dirname(path)
        while not os.path.lexists(probe) and probe not in ("", os.sep):
            probe = os.path.dirname(probe)
        real = os.path.realpath(probe)
        return real == root or real.startswith(root + os.sep)

    def _write_bytes(self, path: str, data: bytes) -> None:
        if not self.local:
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        if not self.inside(path):
            raise StoreError(f"{path} leads outside {self.root} through a symbolic link; "
                             "nothing was written there")
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException as err:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(err, OSError) and err.filename is None:  # name the file (disk full, ...)
                raise OSError(err.errno, err.strerror, path) from None
            raise

    def write_task(self, kind: str, L: int, T: float, task_id: str, encoded: dict[str, bytes],
                   cost: dict[str, float] | None = None) -> None:
        """Write all parts of one task (Parquet bytes from :func:`encode_part`), then its manifest
        (the commit). ``cost`` ({"wall_s", "cpu_s", "phases"}: what the task took where it ran) is recorded
        in the manifest for the cost model's checks (``rgsweep bench sweep``)."""
        parts = {}
        for name in sorted(encoded):
            blob = encoded[name]
            path = self.part_path(name, L, task_id)
            self._write_bytes(path, blob)
            parts[name] = {"path": path[len(self.root) + 1:], "size": len(blob),
                           "sha256": hashlib.sha256(blob).hexdigest()}
        manifest = {"task_id": task_id, "kind": kind, "L": L, "T": T, "parts": parts, "written_at": lock.utc_now()}
        if cost:
            manifest["cost"] = json.loads(json.dumps(cost), parse_float=lambda x: round(float(x), 4))
        self._write_bytes(self.manifest_path(kind, L, task_id),
                          json.dumps(manifest, indent=1, sort_keys=True).encode())

    def write_failure(self, L: int, task_id: str, table: pa.Table) -> None:
        attempt = table.column("attempt")[0].as_py()
        self._write_bytes(self.part_path("failures", L, task_id, attempt),
                          encode_part("failures", task_id, table))

    def failure_attempts(self) -> dict[str, int]:
        """Number of recorded failed attempts per task id."""
        counts: dict[str, int] = {}
        for p in self.parts("failures"):
            counts[p.task_id] = counts.get(p.task_id, 0) + 1
        return counts

    def write_json(self, name: str, obj: dict) -> None:
        self._write_bytes(f"{self.root}/{name}", (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())

    def read_json(self, name: str, problem=None) -> dict | None:
        """``OUT/<name>`` parsed; None if absent. Raises :class:`DamagedRecord` (one line) if it
        is not JSON, too large to be a record, or ``problem(record)`` names what is wrong."""
        path = f"{self.root}/{name}"
        info = self.fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            return None
        if info.type != pafs.FileType.File:
            raise DamagedRecord(f"{path} is not a file")
        if info.size is not None and info.size > 256 * 2**20:
            raise DamagedRecord(f"{path} is damaged ({info.size:,} bytes: too large for a record)")
        try:
            with self.fs.open_input_stream(path) as f:
                record = json.loads(f.read().decode())
        except (ValueError, UnicodeDecodeError) as err:
            raise DamagedRecord(f"{path} is damaged (not JSON: {err})") from None
        why = problem(record) if problem else None
        if why:
            raise DamagedRecord(f"{path} is damaged (it {why})")
        return record

    def set_aside(self, name: str) -> str:
        """Move a damaged ``OUT/<name>`` to ``_damaged/<when>-<name>`` (never deleted); returns where."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        src, dest = f"{self.root}/{name}", f"{self.root}/{DAMAGED}/{stamp}-{uuid.uuid4().hex[:6]}-{name}"
        if not (self.inside(src) and self.inside(dest)):
            raise StoreError(f"{src} leads outside {self.uri} through a symbolic link; remove it")
        self.fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        self.fs.move(src, dest)
        return dest

    def read_part(self, table: str, L: int, task_id: str) -> pa.Table:
        path = self.part_path(table, L, task_id)
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            path = legacy_twin(path)  # a layout-1 file the migration left (a link, no permission)
        try:
            with self.fs.open_input_file(path) as f:
                return pq.read_table(f, schema=SCHEMAS[table])
        except (OSError, pa.ArrowInvalid) as err:
            raise StoreError(f"cannot read {path}: {err}") from None

    # -- verification and quarantine -------------------------------------------------------

    def read_manifest(self, manifest: Manifest) -> bytes:
        """A manifest's raw bytes (JSON)."""
        return self._read_bytes(manifest.path)

    def _read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def relative_part_path(self, table: str, L: int, task_id: str) -> str:
        """A part's path relative to OUT: what its manifest must record."""
        return part_path("", table, L, task_id)

    def _check(self, manifest: Manifest, sizes: dict[str, int], full: bool) -> str | None:
        """Why the task's committed files are damaged, or None if they are intact.

        The manifest must list exactly the tables its kind writes, each at the path derived from
        (table, L, task id) with an integer size and a SHA-256; anything else (another shape, a
        path that points elsewhere) makes the manifest itself damaged. Only derived paths are
        ever read.
        """
        try:
            record = json.loads(self._read_bytes(manifest.path))
        except (OSError, ValueError) as err:
            return f"manifest {manifest.path} unreadable ({err})"
        why = _malformed(record, manifest, self)
        if why:
            return f"manifest {manifest.path} {why}"
        for name, part in record["parts"].items():
            path = self.part_path(name, manifest.L, manifest.task_id)
            if path not in sizes and legacy_twin(path) in sizes:  # not yet moved (layout 1)
                path = legacy_twin(path)
            size = sizes.get(path)
            if size is None:
                return f"{path} is missing"
            if size != part["size"]:
                return f"{path} has {size} bytes, its manifest says {part['size']} (truncated or overwritten)"
            if full and hashlib.sha256(self._read_bytes(path)).hexdigest() != part["sha256"]:
                return f"{path} does not match its SHA-256 (corrupted)"
        return None

    def verify(self, manifests: dict[str, Manifest] | None = None, full: bool = True) -> dict[str, str]:
        """Check committed tasks against their manifests; returns {task_id: reason} of damaged ones.

        ``full`` also hashes every part (reads the whole dataset once, on several threads);
        without it only presence and sizes are checked (listings only).
        """
        manifests = self.manifests() if manifests is None else manifests
        if not manifests:
            return {}
        sizes = {}
        for table in SCHEMAS:
            if table != "failures":
                sizes.update({p.path: p.size for p in self.parts(table)})
        with ThreadPoolExecutor(max_workers=8) as pool:
            reasons = pool.map(lambda m: self._check(m, sizes, full), manifests.values())
            return {tid: why for tid, why in zip(manifests, reasons) if why}

    def quarantine(self, manifest: Manifest) -> str:
        """Move a damaged task's manifest and parts to ``_damaged/<when>-<id>/``; returns that folder.

        The files moved are the manifest itself and the parts at the paths derived from the
        task's (kind, L, id), never paths read from the (possibly crafted) manifest; a file that
        lies in a folder that resolves outside OUT is left where it is, and a destination that
        would resolve outside OUT raises :class:`StoreError` (nothing is moved out of OUT, and
        the damaged files are never recomputed over).
        """
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        dest_root = f"{self.root}/{DAMAGED}/{stamp}-{manifest.task_id}"
        tables = TASK_TABLES.get(manifest.kind, ())
        # the manifest goes last: if a move fails (a read-only folder), the task still reads as
        # damaged and the next run moves the rest, instead of recomputing over the damaged part
        paths = [self.part_path(t, manifest.L, manifest.task_id) for t in tables]
        paths.append(self.manifest_path(manifest.kind, manifest.L, manifest.task_id))
        paths += [legacy_twin(p) for p in paths]  # a layout-1 task the migration left in place
        for path in paths:
            if self.fs.get_file_info(path).type != pafs.FileType.File:
                continue
            dest = f"{dest_root}/{path[len(self.root) + 1:]}"
            if not self.inside(path):  # in a folder that leads out of OUT: not ours to move
                continue
            if not self.inside(dest):  # kept, never recomputed over, never moved out of OUT
                raise StoreError(f"cannot move the damaged result of task {manifest.task_id} aside: "
                                 f"{self.root}/{DAMAGED} leads outside {self.root} (a symbolic link?); "
                                 "remove or rename it and rerun")
            self.fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
            self.fs.move(path, dest)
        return dest_root

    def clean_temporaries(self) -> int:
        """Delete temporary files left by a driver killed mid-write (call with the lock held)."""
        if not self.local or not self.exists():
            return 0
        removed = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                if TEMPORARY.fullmatch(name):  # ours only: a user's own .notes.tmp stays
                    os.unlink(os.path.join(directory, name))
                    removed += 1
        return removed

    # -- one driver at a time --------------------------------------------------------------

    def acquire_lock(self) -> None:
        """Hold ``OUT/.rgsweep.lock`` for this process (:func:`orchestrator.lock.acquire`); only
        local folders are locked: object stores have no lock primitive here, so two drivers on
        one ``s3://`` OUT are the user's to avoid (README)."""
        if not self.local:
            return
        if os.path.lexists(self.root) and not os.path.isdir(self.root):
            raise StoreError(f"{self.uri} exists and is not a folder; choose another --out")
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, LOCK)
        if not self.inside(path) or os.path.islink(path):
            raise StoreError(f"{path} is a symbolic link or leads outside {self.uri}; remove it")
        try:
            self._lock_fd = lock.acquire(path, self.uri)
        except lock.Held as err:
            raise LockError(str(err)) from None

    def release_lock(self) -> None:
        """Remove the lock file (still holding it, so nobody else is removed) and let go."""
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            self._lock_fd = None
            lock.release(os.path.join(self.root, LOCK), fd)
