"""Owner-only modes for the data directory and the files in it (S11).

The directory holds the database (password hashes, signing keys, token digests)
and the TLS key: with the usual umask 022 they would be readable by every local
user. Modes are set at creation, and tightened, with a log line, when an older
install left them looser.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600

log = logging.getLogger("userservice.files")


def private_directory(path: Path) -> None:
    """Create `path` (and missing parents) 0700, or tighten it if it exists."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIRECTORY)


def private_file(path: Path, *, create: bool = True) -> None:
    """Create `path` empty with mode 0600 if it is missing (and `create`), or tighten
    an existing one. A missing parent directory is left for the caller to report."""
    if create:
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
        except OSError:
            return
    _tighten(path, PRIVATE_FILE)


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        path.chmod(current & mode)
        log.warning(
            "tightened the permissions of %s from %04o to %04o", path, current, current & mode
        )


def write_private(path: Path, data: bytes) -> None:
    """Written whole under a temporary name and renamed, 0600 from its creation."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
