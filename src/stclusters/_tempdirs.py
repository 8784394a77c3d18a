"""Private temporary folders that a later process removes if their owner died.

``atexit`` does not run when a process is killed (``kill -9``, out of memory), so a spill
folder of DuckDB could stay behind, tens of MB each time. Each folder made here holds a
lock file that its process keeps locked (``flock``) while it lives; the kernel drops the lock
when the process dies, however it dies. Making a new folder first removes every folder of
the same prefix whose lock is free: its owner is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

OWNER_LOCK = ".owner.lock"

#: Locks held by this process (file descriptors), one per folder it made; closed at exit.
_held: list[int] = []


def _owner_dead(folder: Path) -> bool:
    """True when ``folder``'s lock file exists and nobody holds it (its owner is gone)."""
    try:
        fd = os.open(folder / OWNER_LOCK, os.O_RDWR)
    except OSError:  # no lock file yet (being made right now) or not ours: leave it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return True


def sweep(prefix: str, *, base: str | None = None) -> list[Path]:
    """Remove the folders ``<base>/<prefix>*`` whose owner process is gone; return them."""
    base_dir = Path(base or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for folder in sorted(base_dir.glob(prefix + "*")):
            if folder.is_dir() and not folder.is_symlink() and _owner_dead(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def private_dir(prefix: str, *, base: str | None = None) -> str:
    """A new temporary folder owned by this process, removed at exit (or, if the process is
    killed, by the next process that makes one of the same ``prefix``), in ``base`` (the
    system's temporary folder by default)."""
    if base is not None:
        os.makedirs(base, exist_ok=True)
    sweep(prefix, base=base)
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    # Locked under another name, then renamed: a sweeper never sees the lock file unlocked.
    making = os.path.join(path, OWNER_LOCK + ".new")
    fd = os.open(making, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(making, os.path.join(path, OWNER_LOCK))
    _held.append(fd)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
