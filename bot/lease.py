"""One serving process per database: an exclusive lease that a second `run` cannot take.

An fcntl lock on a file next to the database, not a lock row with a heartbeat: the kernel
drops the lock the moment its holder dies (even by kill -9), so a restart never waits for an
expiry, and a live holder is never displaced, however long it is paused or busy (a heartbeat
lease would hand a stalled process's rows to a second one). stdlib only; Linux and macOS."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bot.private_files import private_dir


class LeaseHeld(Exception):
    """Another live process serves this database."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by pid {holder or '?'}")
        self.path = path
        self.holder = holder


class DatabaseLease:
    def __init__(self, db_path: Path | str) -> None:
        # Never unlinked: a process that opened the old file would lock a different inode
        # than the next one and both would "hold" the lease.
        self.path = Path(f"{db_path}.lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lease or raise LeaseHeld at once (never waits)."""
        if self._fd is not None:
            return
        private_dir(self.path.parent)  # the database's directory: 0700 from the start
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise LeaseHeld(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        # The pid is only for the message a second start prints; the lock is the truth.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DatabaseLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
