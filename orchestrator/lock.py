"""One driver per OUT: an exclusive ``flock`` on ``OUT/.rgsweep.lock``.

The kernel releases the lock when its holder dies, however it dies, so there is no stale lock
to guess about; two drivers can never both hold it. The file also says who holds it (pid,
host, since), for the message the second driver prints. The file is unlinked only while still
held, and only if it is still the holder's inode.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket

__all__ = ["Held", "acquire", "release", "utc_now"]


class Held(RuntimeError):
    """Another live driver holds the lock (the store raises it as its LockError)."""


def utc_now() -> str:
    """Now, UTC, to the second (ISO 8601): the time stamp of OUT's records."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _holder(fd: int) -> dict:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def acquire(path: str, uri: str) -> int:
    """Lock the file at ``path`` for this process; returns the descriptor that holds it.

    Raises :class:`Held` naming the holder if another process holds it.
    """
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise Held(
                f"{uri} is in use by another rgsweep run (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} since {holder.get('since', '?')}); wait for it to "
                "finish") from None
        # The holder we waited out may have unlinked the file before we locked it: then
        # we hold a lock on a file nobody else can find. Lock the file at the path instead.
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        return fd
    raise Held(f"could not take the lock {path}")


def release(path: str, fd: int) -> None:
    """Unlink ``path`` if it is still the file ``fd`` locks, then close ``fd`` (never raises
    for a file already gone or a folder turned read-only)."""
    try:
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    except OSError:  # gone, or OUT turned read-only: the flock dies with the fd all the same,
        pass         # and the error that stopped the run (not this one) is what gets reported
    finally:
        os.close(fd)
