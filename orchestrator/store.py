"""The dataset on disk: one Parquet part per task per table, written atomically.

Layout (DESIGN.md)::

    OUT/sweep.json                                  validated spec, versions, schema, history
    OUT/<table>/L=<L>/part-<task_id>.parquet        one file per task per table
    OUT/failures/L=<L>/part-<task_id>-<attempt>.parquet

A task is done when the part of its commit table (``ising`` for sampling, ``rbm`` for training)
exists; that part is written last, after the task's other tables.  Every local write goes to a
dot-prefixed temporary file in the same directory, is fsync'ed and then ``os.replace``'d into
place, so a reader never sees half a file (pyarrow and pandas ignore dot-files).  On object
stores (``s3://…``) a single PUT is already atomic.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .schemas import COMMIT_TABLE, SCHEMAS

__all__ = ["Store", "StoreError"]

_PART = re.compile(r"^part-([0-9a-f]{16})(?:-(\d+))?\.parquet$")


class StoreError(RuntimeError):
    """A dataset that cannot be used as asked (bad location, unreadable part)."""


@dataclass(frozen=True)
class Part:
    table: str
    L: int
    task_id: str
    path: str


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

    # -- paths -----------------------------------------------------------------------------

    def part_path(self, table: str, L: int, task_id: str, attempt: int | None = None) -> str:
        suffix = f"-{attempt}" if attempt is not None else ""
        return f"{self.root}/{table}/L={L}/part-{task_id}{suffix}.parquet"

    def exists(self) -> bool:
        return self.fs.get_file_info(self.root).type == pafs.FileType.Directory

    def parts(self, table: str) -> list[Part]:
        """All part files of one table (one listing per table, not per task)."""
        base = f"{self.root}/{table}"
        if self.fs.get_file_info(base).type != pafs.FileType.Directory:
            return []
        found = []
        for info in self.fs.get_file_info(pafs.FileSelector(base, recursive=True)):
            if info.type != pafs.FileType.File:
                continue
            match = _PART.match(info.base_name)
            parent = info.path.rsplit("/", 2)[-2] if info.path.count("/") >= 2 else ""
            if match and parent.startswith("L="):
                found.append(Part(table, int(parent[2:]), match.group(1), info.path))
        return found

    def done_ids(self, kind: str) -> set[str]:
        """Ids of the tasks of ``kind`` whose commit part exists."""
        return {p.task_id for p in self.parts(COMMIT_TABLE[kind])}

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

    def write_part(self, table: str, L: int, task_id: str, data: pa.Table,
                   attempt: int | None = None) -> str:
        """Validate ``data`` against the table's schema and write its part atomically."""
        schema = SCHEMAS[table]
        if not data.schema.equals(schema):
            raise StoreError(f"table {table!r} for task {task_id} does not match its schema: "
                             f"got {data.schema.names}, expected {schema.names}")
        sink = pa.BufferOutputStream()
        pq.write_table(data, sink, compression="zstd")
        path = self.part_path(table, L, task_id, attempt)
        self._write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def write_task(self, kind: str, L: int, task_id: str, tables: dict[str, pa.Table]) -> None:
        """Write all tables of one task, the commit table last (so done implies complete)."""
        commit = COMMIT_TABLE[kind]
        for name in sorted(tables, key=lambda n: n == commit):
            self.write_part(name, L, task_id, tables[name])

    def write_failure(self, L: int, task_id: str, table: pa.Table) -> None:
        attempt = table.column("attempt")[0].as_py()
        self.write_part("failures", L, task_id, table, attempt=attempt)

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

    # -- reading ---------------------------------------------------------------------------

    def read_part(self, table: str, L: int, task_id: str) -> pa.Table:
        path = self.part_path(table, L, task_id)
        try:
            with self.fs.open_input_file(path) as f:
                return pq.read_table(f, schema=SCHEMAS[table])
        except (OSError, pa.ArrowInvalid) as err:
            raise StoreError(f"cannot read {path}: {err}") from None
