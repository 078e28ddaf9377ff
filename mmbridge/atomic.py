"""Write files whole or not at all (a temporary file beside the target, renamed into place), and
check a folder can be written before any work starts."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "writable_folder"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """A text file open for writing; on success it replaces ``path`` in one rename, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide reports from other users of the machine
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def writable_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a folder that exists and can be written (made if missing), checked before any
    work starts; otherwise one ConfigError line naming ``option``."""
    from .errors import ConfigError

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{option} {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".probe."))
    except OSError as exc:
        raise ConfigError(
            f"{option} {folder} cannot be written ({exc.strerror or exc}); choose another folder"
        ) from None
    return folder
