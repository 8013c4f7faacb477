"""The dataset on disk: one Parquet part per task per table, written atomically, committed by a manifest.

Layout (DESIGN.md)::

    OUT/sweep.json                                  validated spec, versions, schema, history
    OUT/plan.json                                   task ids of the last run's spec and code
    OUT/<table>/L=<L>/part-<task_id>.parquet        one file per task per table
    OUT/failures/L=<L>/part-<task_id>-<attempt>.parquet
    OUT/_tasks/L=<L>/<kind>-<task_id>.json          the task's manifest: its parts, sizes, SHA-256
    OUT/_damaged/<when>/...                         parts found damaged, moved aside (never deleted)
    OUT/.rgsweep.lock                               held by the one driver writing to OUT

A task is done when its manifest exists.  The manifest is written after all of the task's
parts, so a driver killed half-way leaves parts without a manifest: they are not results (the
loaders skip them) and the retry replaces them.  Every local write goes to a dot-prefixed
temporary file in the same directory, is fsync'ed and then ``os.replace``'d into place, so a
reader never sees half a file.  On object stores (``s3://…``) a single PUT is already atomic.

Before a run, :meth:`Store.verify` checks every committed part against its manifest (present,
same size, same SHA-256); a damaged task's files are moved to ``_damaged/`` and it is recomputed.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .schemas import SCHEMAS

__all__ = ["Store", "StoreError", "LockError", "Manifest", "encode_part"]

_PART = re.compile(r"^part-([0-9a-f]{16})(?:-(\d+))?\.parquet$")
_MANIFEST = re.compile(r"^(sample|train|flow)-([0-9a-f]{16})\.json$")
MANIFESTS, DAMAGED, LOCK = "_tasks", "_damaged", ".rgsweep.lock"


class StoreError(RuntimeError):
    """A dataset that cannot be used as asked (bad location, unreadable part)."""


class LockError(StoreError):
    """Another live driver is writing to the same OUT."""


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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Store:
    """One output dataset, on a local path or any filesystem URI pyarrow understands."""

    def __init__(self, out: str | os.PathLike):
        out = str(out)
        if "://" in out:
            self.fs, root = pafs.FileSystem.from_uri(out)
            self.root = root.rstrip("/")
        else:
            self.fs, self.root = pafs.LocalFileSystem(), str(Path(out).resolve())
        self.uri = out
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    # -- paths and listings ----------------------------------------------------------------

    def part_path(self, table: str, L: int, task_id: str, attempt: int | None = None) -> str:
        suffix = f"-{attempt}" if attempt is not None else ""
        return f"{self.root}/{table}/L={L}/part-{task_id}{suffix}.parquet"

    def manifest_path(self, kind: str, L: int, task_id: str) -> str:
        return f"{self.root}/{MANIFESTS}/L={L}/{kind}-{task_id}.json"

    def exists(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory

    def _files(self, sub: str) -> list[pafs.FileInfo]:
        base = f"{self.root}/{sub}"
        if self.fs.get_file_info(base).type != pafs.FileType.Directory:
            return []
        return [i for i in self.fs.get_file_info(pafs.FileSelector(base, recursive=True))
                if i.type == pafs.FileType.File]

    @staticmethod
    def _lattice(info: pafs.FileInfo) -> int | None:
        parent = info.path.rsplit("/", 2)[-2] if info.path.count("/") >= 2 else ""
        return int(parent[2:]) if parent.startswith("L=") and parent[2:].isdigit() else None

    def parts(self, table: str) -> list[Part]:
        """All part files of one table (one listing per table, not per task)."""
        found = []
        for info in self._files(table):
            match, L = _PART.match(info.base_name), self._lattice(info)
            if match and L is not None:
                found.append(Part(table, L, match.group(1), info.path, info.size))
        return found

    def manifests(self) -> dict[str, Manifest]:
        """Every committed task, from one listing of ``_tasks/``."""
        found = {}
        for info in self._files(MANIFESTS):
            match, L = _MANIFEST.match(info.base_name), self._lattice(info)
            if match and L is not None:
                found[match.group(2)] = Manifest(match.group(1), L, match.group(2), info.path)
        return found

    # -- writing ---------------------------------------------------------------------------

    def _write_bytes(self, path: str, data: bytes) -> None:
        if not self.local:
            with self.fs.open_output_stream(path) as f:
                f.write(data)
            return
        directory, name = os.path.split(path)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_task(self, kind: str, L: int, T: float, task_id: str, encoded: dict[str, bytes]) -> None:
        """Write all parts of one task (Parquet bytes from :func:`encode_part`), then its manifest
        (the commit)."""
        parts = {}
        for name in sorted(encoded):
            blob = encoded[name]
            path = self.part_path(name, L, task_id)
            self._write_bytes(path, blob)
            parts[name] = {"path": path[len(self.root) + 1:], "size": len(blob),
                           "sha256": hashlib.sha256(blob).hexdigest()}
        manifest = {"task_id": task_id, "kind": kind, "L": L, "T": T, "parts": parts, "written_at": _now()}
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

    def read_json(self, name: str) -> dict | None:
        path = f"{self.root}/{name}"
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())

    def read_part(self, table: str, L: int, task_id: str) -> pa.Table:
        path = self.part_path(table, L, task_id)
        try:
            with self.fs.open_input_file(path) as f:
                return pq.read_table(f, schema=SCHEMAS[table])
        except (OSError, pa.ArrowInvalid) as err:
            raise StoreError(f"cannot read {path}: {err}") from None

    # -- verification and quarantine -------------------------------------------------------

    def _read_bytes(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def _check(self, manifest: Manifest, sizes: dict[str, int], full: bool) -> str | None:
        """Why the task's committed files are damaged, or None if they are intact."""
        try:
            record = json.loads(self._read_bytes(manifest.path))
            parts = record["parts"]
        except (OSError, ValueError, KeyError) as err:
            return f"manifest {manifest.path} unreadable ({err})"
        for name, part in parts.items():
            path = f"{self.root}/{part['path']}"
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
        """Move a damaged task's manifest and parts to ``_damaged/<when>/``; returns that folder."""
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        dest_root = f"{self.root}/{DAMAGED}/{stamp}-{manifest.task_id}"
        try:
            parts = json.loads(self._read_bytes(manifest.path))["parts"].values()
            paths = [f"{self.root}/{p['path']}" for p in parts]
        except (OSError, ValueError, KeyError):
            paths = [p.path for t in SCHEMAS for p in self.parts(t) if p.task_id == manifest.task_id]
        for path in [manifest.path] + paths:
            if self.fs.get_file_info(path).type != pafs.FileType.File:
                continue
            dest = f"{dest_root}/{path[len(self.root) + 1:]}"
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
                if name.startswith(".") and name.endswith(".tmp"):
                    os.unlink(os.path.join(directory, name))
                    removed += 1
        return removed

    # -- one driver at a time --------------------------------------------------------------

    def acquire_lock(self) -> None:
        """Take ``OUT/.rgsweep.lock``; a lock whose driver died on this host is taken over.

        Only local folders are locked: object stores have no atomic create-if-absent here,
        so two drivers on one ``s3://`` OUT are the user's to avoid (README).
        """
        if not self.local:
            return
        os.makedirs(self.root, exist_ok=True)
        path = os.path.join(self.root, LOCK)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._lock_holder(path)
                if holder is None or self._stale(holder):
                    self._break_lock(path, holder)
                    continue
                raise LockError(
                    f"{self.uri} is in use by another rgsweep run (pid {holder.get('pid')} on "
                    f"{holder.get('host')} since {holder.get('since')}); wait for it to finish, or "
                    f"delete {path} if that run is gone") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._lock = path
            return
        raise LockError(f"could not take the lock {path}")

    @staticmethod
    def _lock_holder(path: str) -> dict | None:
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}  # released meanwhile: just retry
        except (OSError, ValueError):
            return None  # unreadable lock: a driver died while writing it

    @staticmethod
    def _stale(holder: dict) -> bool:
        if not holder:
            return False
        if holder.get("host") != socket.gethostname():
            return False  # cannot tell whether a driver on another host is alive
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError):
            return False
        return False

    @staticmethod
    def _break_lock(path: str, holder: dict | None) -> None:
        if holder == {}:
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def release_lock(self) -> None:
        path = getattr(self, "_lock", None)
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            self._lock = None
