"""Moving a dataset written in layout 1 (``OUT/<table>/L=<L>/…``) to today's (``OUT/<table>/L<L>/…``).

Layout 1 named the per-L folders Hive-style. Every part file also carries its ``L`` column, and
``pandas.read_parquet`` / ``pyarrow.parquet.read_table`` then refuse the table ("Field L has
incompatible types: int32 vs dictionary"). The loaders read both layouts; ``rgsweep run`` moves
an old dataset over before it plans, with the lock held. Task ids, parts and manifests are
unchanged: only the folder of each file is.
"""

from __future__ import annotations

import hashlib
import os

import pyarrow.fs as pafs

from contract.layout import LEGACY_FOLDER, MANIFESTS, legacy_twin, listing
from contract.schemas import SCHEMAS

__all__ = ["migrate_layout"]


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _identical(store, a: str, b: str) -> bool:
    """Same bytes (size first, then SHA-256): a copy an interrupted object-store move left behind."""
    ia, ib = store.fs.get_file_info(a), store.fs.get_file_info(b)
    if ia.size != ib.size:
        return False
    digests = []
    for path in (a, b):
        with store.fs.open_input_stream(path) as f:
            digests.append(hashlib.sha256(f.read()).digest())
    return digests[0] == digests[1]


def migrate_layout(store) -> dict[str, int]:
    """Move every file of a layout-1 ``L=<L>`` folder of a table or of ``_tasks`` to the ``L<L>``
    folder beside it; returns the counts ``moved``, ``set_aside`` and ``left`` (in the old layout).

    Tables go before ``_tasks``, so a manifest in today's layout has its parts there; a run
    interrupted half-way finishes the move the next time. Where the new place is taken: the very
    same file (an ``L8`` link to ``L=8``) is left alone; an identical copy (an interrupted
    object-store move) is removed; a different file is set aside in ``_damaged/``
    (:meth:`Store.set_aside`), never deleted. A file in a folder that leads outside OUT through a
    symbolic link, or one that cannot be moved (permissions), is left where it is: every reader
    still finds it there. Emptied local folders are removed (never a link).
    """
    counts = {"moved": 0, "set_aside": 0, "left": 0}
    for top in [*SCHEMAS, MANIFESTS]:
        base = f"{store.root}/{top}"
        for info in listing(store.fs, base):
            folder = info.path[len(base) + 1:].split("/")
            if len(folder) != 2 or not LEGACY_FOLDER.fullmatch(folder[0]):
                continue
            dest = legacy_twin(info.path)
            parent = os.path.dirname(info.path)
            try:
                if not (store.inside(info.path) and store.inside(dest)) or (
                        store.local and (os.path.islink(parent) or os.path.islink(os.path.dirname(dest))
                                         or _same_file(info.path, dest))):
                    counts["left"] += 1
                    continue
                if store.fs.get_file_info(dest).type == pafs.FileType.NotFound:
                    store.fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
                    store.fs.move(info.path, dest)
                    counts["moved"] += 1
                elif _identical(store, info.path, dest):
                    store.fs.delete_file(info.path)
                    counts["moved"] += 1
                else:
                    store.set_aside(info.path[len(store.root) + 1:])
                    counts["set_aside"] += 1
                if store.local and not os.listdir(parent):
                    os.rmdir(parent)
            except OSError:  # read-only folder, a file that vanished: the readers still find it
                counts["left"] += 1
    return counts
