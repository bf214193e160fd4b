"""Files with personal data (the database, its WAL/SHM, every export) readable by the bot's
own account only: 0600 files in 0700 directories, whatever the umask.

A file is *created* with its mode (os.open with O_CREAT and 0o600, then fchmod on the open
descriptor against a umask that strips more, or a file that already existed): a chmod after
a normal create leaves a moment in which the file is world-readable. The modes are fixed,
not settings: nothing else needs to read these files, and a looser mode is a leak.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path | str) -> Path:
    """Create `path` (and missing parents) 0700; tighten it if it exists with group/other
    access and belongs to us, unless it is a shared sticky directory like /tmp (closing
    that would lock every other account out of it; the files in it are still 0600)."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)  # parents get the umask's mode
    if not os.stat(path).st_mode & stat.S_ISVTX:
        tighten(path, DIR_MODE)
    return path


def tighten(path: Path | str, mode: int = FILE_MODE) -> None:
    """Remove group/other access from an existing file or directory that we own."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.getuid() or not stat.S_IMODE(st.st_mode) & 0o077:
        return  # someone else's (leave it) or already private
    os.chmod(path, mode)
    log.warning("%s was readable by other accounts; permissions set to %o", path, mode)


def open_private(path: Path | str) -> BinaryIO:
    """`path` opened for writing (truncated), created 0600; an existing file becomes 0600
    before anything is written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0),
                 FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path | str, data: bytes) -> None:
    with open_private(path) as fh:
        fh.write(data)


def create_private(path: Path | str) -> None:
    """Make sure `path` exists, 0600 (before SQLite creates it with the umask's mode)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE))
    tighten(path)
