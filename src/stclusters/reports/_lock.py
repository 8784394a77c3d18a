"""One run at a time in an output folder: a lock file that the writing process holds.

The lock is ``<out>/.stclusters.lock``, locked with ``flock`` and holding the holder's pid,
host and start time (for the message a second run prints). The kernel drops a ``flock``
when its process ends, however it ends (``kill -9`` included), so a lock left by a dead run
is free and the next run takes it over: no stale lock to clear by hand. A second run while
the first lives is refused at once with :class:`~stclusters.errors.OutputBusyError`.

The lock is re-entrant within a process (the command line takes it before the run and
:func:`~stclusters.reports.outputs.write_outputs` takes it again) and is removed on release.
POSIX only (``fcntl``); a network file system without ``flock`` is not supported.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from stclusters.errors import OutputBusyError, OutputWriteError

LOCK_NAME = ".stclusters.lock"

_guard = threading.Lock()
#: Folders this process holds: resolved path → [fd, depth, thread id].
_held: dict[Path, list[int]] = {}


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    return ""


def _acquire(lock: Path, out: Path) -> int:
    """Lock ``lock`` (made if missing) without waiting; return its descriptor.

    Raises
    ------
    OutputBusyError
        A living process holds it.
    """
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise OutputBusyError(out, holder) from None
        # The holder we waited behind may have removed the file on release: a lock on a
        # removed file guards nothing, so lock the file that is there now.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
    return fd


def _make_and_acquire(key: Path, lock: Path, out: Path, *, attempts: int = 5) -> int:
    """Make the folder and lock it; a run that made the same folder and failed may remove
    it between the two steps (it removes the folder it made if empty): then try again."""
    for attempt in range(attempts):
        key.mkdir(parents=True, exist_ok=True)
        try:
            return _acquire(lock, out)
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def out_dir_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``out``'s lock for the block (``out`` is made if missing); yield the lock path.

    A folder this call made and that is empty at the end is removed again, so a run that
    fails before writing leaves nothing behind.

    Raises
    ------
    OutputBusyError
        Another living run holds the folder.
    OutputWriteError
        The folder or its lock file cannot be made (permission, read-only, full disk).
    """
    out = Path(out)
    key = out.resolve()
    lock = key / LOCK_NAME
    me = threading.get_ident()
    with _guard:
        held = _held.get(key)
        if held is not None and held[2] != me:
            raise OutputBusyError(out, f"pid {os.getpid()}, another thread")
        if held is not None:
            held[1] += 1
    if held is not None:
        try:
            yield lock
        finally:
            with _guard:
                held[1] -= 1
        return
    made = not key.exists()
    try:
        fd = _make_and_acquire(key, lock, out)
    except OSError as exc:
        if made:
            with contextlib.suppress(OSError):
                key.rmdir()
        raise OutputWriteError(lock, exc) from exc
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                key.rmdir()
        raise
    with _guard:
        _held[key] = [fd, 1, me]
    try:
        yield lock
    finally:
        with _guard:
            del _held[key]
        # Removed while still locked: a run that opened it meanwhile sees it gone and
        # locks the new file instead (see _acquire).
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)
        if made:
            with contextlib.suppress(OSError):
                key.rmdir()  # only if empty
