"""State files only their owner can read (mode 0600, directories 0700), and the replica
identity kept in the state directory so that a restarted process is recognised as itself."""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["private_file", "replica_identity", "write_private"]

logger = logging.getLogger(__name__)


def _private_dir(path: Path) -> None:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def private_file(path: str | Path) -> None:
    """Create `path` empty with mode 0600 when missing (its directory 0700 when missing);
    an existing file of ours is narrowed to 0600."""
    path = Path(path)
    _private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        if os.fstat(fd).st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically, mode 0600."""
    path = Path(path)
    _private_dir(path.parent)
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(fd, 0o600)
        file.write(text)
    os.replace(partial, path)


@contextmanager
def replica_identity(path: str | Path | None) -> Iterator[str]:
    """This process's replica id, kept in `path` across restarts while the process runs.

    A second process on the same state directory (the file is locked) gets a fresh id of
    its own, so two processes never share one. No path: a fresh id per start.
    """
    fresh = f"replica-{uuid.uuid4().hex[:12]}"
    if not path:
        yield fresh
        return
    path = Path(path)
    private_file(path)
    with path.open("r+", encoding="utf-8") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("%s is in use by another process: using a fresh replica id", path)
            yield fresh
            return
        saved = file.read().strip()
        if not saved.startswith("replica-"):
            saved = fresh
            file.seek(0)
            file.truncate()
            file.write(saved + "\n")
            file.flush()
        yield saved  # the lock is held until the file closes
