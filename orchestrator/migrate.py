"""Moving a dataset written in layout 1 (``OUT/<table>/L=<L>/…``) to today's (``OUT/<table>/L<L>/…``).

Layout 1 named the per-L folders Hive-style. Every part file also carries its ``L`` column, and
``pandas.read_parquet`` / ``pyarrow.parquet.read_table`` then refuse the table ("Field L has
incompatible types: int32 vs dictionary"). The loaders read both layouts; ``rgsweep run`` moves
an old dataset over before it plans, with the lock held. Task ids, parts and manifests are
unchanged: only the folder of each file is.
"""

from __future__ import annotations

import os

import pyarrow.fs as pafs

from contract.layout import LEGACY_FOLDER, MANIFESTS, legacy_twin, listing
from contract.schemas import SCHEMAS

__all__ = ["migrate_layout"]


def migrate_layout(store) -> int:
    """Move every file of a layout-1 ``L=<L>`` folder of a table or of ``_tasks`` to the ``L<L>``
    folder beside it, and return how many files moved.

    Tables go before ``_tasks``, so a manifest in today's layout has its parts there; a run
    interrupted half-way finishes the move the next time. A file whose new place is taken is set
    aside in ``_damaged/`` (:meth:`Store.set_aside`), never deleted; a file in a folder that leads
    outside OUT through a symbolic link is left alone. Emptied local folders are removed.
    """
    moved = 0
    for top in [*SCHEMAS, MANIFESTS]:
        base = f"{store.root}/{top}"
        for info in listing(store.fs, base):
            folder = info.path[len(base) + 1:].split("/")
            if len(folder) != 2 or not LEGACY_FOLDER.fullmatch(folder[0]) or not store.inside(info.path):
                continue
            dest = legacy_twin(info.path)
            if store.fs.get_file_info(dest).type != pafs.FileType.NotFound or not store.inside(dest):
                store.set_aside(info.path[len(store.root) + 1:])
            else:
                store.fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
                store.fs.move(info.path, dest)
            moved += 1
            parent = os.path.dirname(info.path)
            if store.local and not os.listdir(parent):
                os.rmdir(parent)
    return moved
