"""Finding run folders under a root, and what each one's files say, without writing anything.

A run folder is one that holds ``run.json`` (written before an eval asks anything) or ``summary.json``.
Whether its eval is still writing is read from the kernel's lock table (``/proc/locks``), never by
taking the lock: a probe that took it, even for a moment, could make a starting eval refuse to run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..eval.rows import ROWS_FILE
from ..eval.rundir import FIT_FILE, INPUTS_FILE, LOCK_FILE, RUN_FILE

__all__ = ["SUMMARY_FILE", "Files", "find_runs", "is_being_written", "read_json", "stamp_of"]

SUMMARY_FILE = "summary.json"
#: folders never searched: hidden ones (caches, virtual environments) and these
SKIPPED = frozenset({"node_modules", "__pycache__", "site-packages"})
WATCHED = (RUN_FILE, SUMMARY_FILE, ROWS_FILE, INPUTS_FILE, FIT_FILE)
#: how deep under the root a run folder may lie
DEPTH = 6


@dataclass(frozen=True)
class Files:
    """A run folder's files; ``stamp`` changes whenever one of them does (size and modification time)."""

    folder: Path
    stamp: tuple[tuple[int, int], ...]

    @property
    def rows(self) -> Path:
        return self.folder / ROWS_FILE

    @property
    def run(self) -> Path:
        return self.folder / RUN_FILE

    @property
    def summary(self) -> Path:
        return self.folder / SUMMARY_FILE

    @property
    def inputs(self) -> Path:
        return self.folder / INPUTS_FILE

    @property
    def fit(self) -> Path:
        return self.folder / FIT_FILE

    def changed_ns(self, name: str) -> int:
        """When file ``name`` last changed (nanoseconds since the epoch; 0 if it is not there)."""
        return self.stamp[WATCHED.index(name)][1]

    @property
    def modified(self) -> float:
        """The newest change to any of its files (seconds since the epoch)."""
        return max((t for _, t in self.stamp), default=0) / 1e9


def stamp_of(folder: Path) -> tuple[tuple[int, int], ...]:
    out = []
    for name in WATCHED:
        try:
            info = os.stat(folder / name)
            out.append((info.st_size, info.st_mtime_ns))
        except OSError:
            out.append((-1, 0))
    return tuple(out)


def find_runs(root: Path) -> dict[str, Files]:
    """Every run folder under ``root`` (itself included), keyed by its path relative to ``root``.
    Symbolic links are not followed, so nothing outside ``root`` is reached."""
    found: dict[str, Files] = {}
    root = root.resolve()
    for here, dirs, names in os.walk(root):
        folder = Path(here)
        depth = len(folder.relative_to(root).parts)
        dirs[:] = [] if depth >= DEPTH else sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED)
        if RUN_FILE in names or SUMMARY_FILE in names:
            key = folder.relative_to(root).as_posix()
            found[key] = Files(folder, stamp_of(folder))
    return found


def _locked_inodes() -> set[tuple[int, int]] | None:
    """(device, inode) of every file that holds a lock now; None where the kernel does not say."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    held = set()
    for line in text.splitlines():
        parts = line.split()
        where = next((p for p in parts if p.count(":") == 2), None)
        if where is None:
            continue
        major, minor, inode = where.split(":")
        try:
            held.add((os.makedev(int(major, 16), int(minor, 16)), int(inode)))
        except ValueError:
            continue
    return held


def is_being_written(folder: Path, recent_s: float = 30.0) -> bool:
    """Whether an eval holds ``folder``'s lock; where the lock table cannot be read, whether its
    rows changed in the last ``recent_s`` seconds after its summary was written."""
    lock = folder / LOCK_FILE
    held = _locked_inodes()
    if held is not None:
        try:
            info = os.stat(lock)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) in held
    import time

    try:
        rows = os.stat(folder / ROWS_FILE).st_mtime
    except OSError:
        return False
    try:
        summary = os.stat(folder / SUMMARY_FILE).st_mtime
    except OSError:
        summary = 0.0
    return rows > summary and time.time() - rows < recent_s


def read_json(path: Path) -> tuple[dict | None, str | None]:
    """A JSON object from ``path``, or None and why not (None, None: the file is not there)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path.name} cannot be read ({type(exc).__name__})"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, None
