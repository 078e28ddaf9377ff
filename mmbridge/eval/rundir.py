"""An evaluation's --out folder: one writer at a time, and run.json, a record of what the run measures.

A rerun into the same folder resumes only when it would measure the same thing: the same samples,
and for every provider it shares with the earlier run, the same identity (what its cache key uses:
type, model, endpoint hash, generation settings, prompt version, the local model's weights hash).
Otherwise it refuses with one line that names what changed; ``restart`` empties the folder first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, writable_folder
from ..data.sample import Sample
from ..errors import RunError
from ..offline import OFFLINE_FOLDER, running_batches
from ..provider import Provider, identity_of
from .rows import ROWS_FILE, Row, read_rows

__all__ = [
    "INPUTS_FILE",
    "LOCK_FILE",
    "RUN_FILE",
    "exclusive",
    "record_inputs",
    "record_run",
    "row_source",
    "run_identity",
]

RUN_FILE = "run.json"
#: the run's samples as asked (pictures by absolute path), for `mmbridge view`
INPUTS_FILE = "inputs.jsonl"
#: the thresholds `mmbridge cascade fit` chose on this run's rows
FIT_FILE = "cascade_fit.json"
LOCK_FILE = ".lock"
OUTPUTS = (ROWS_FILE, RUN_FILE, INPUTS_FILE, FIT_FILE, "summary.json", "report.md", "report.html")


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block, or raise RunError if another process holds it.

    An OS lock (flock) on ``out/.lock``: it dies with its process, so a killed run never leaves
    the folder locked. Temporary files that a killed report write left behind are removed.
    """
    writable_folder(out)  # a file, a path under a file, or a folder that cannot be made: one line
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunError(f"another mmbridge eval is writing to {out}; wait for it to end, or use another --out") from None
    try:
        for leftover in out.glob(".*.tmp"):  # atomic_write's temporary files
            leftover.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


def _samples_digest(samples: Sequence[Sample]) -> str:
    """A hash of the samples' content; an image counts by its file name and size (no decoding)."""
    digest = hashlib.sha256()
    for sample in samples:
        data = sample.model_dump(mode="json", exclude={"image"})
        size = sample.image.stat().st_size if sample.image.is_file() else None
        digest.update(json.dumps([data, sample.image.name, size], sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


def run_identity(
    *,
    version: str,
    dataset: str,
    samples: Sequence[Sample],
    tasks: set[str] | None,
    limit: int | None,
    seed: int,
    providers: Mapping[str, Provider],
) -> dict[str, Any]:
    identity = {
        "mmbridge": version,
        "dataset": dataset,
        "samples": {"count": len(samples), "sha256": _samples_digest(samples)},
        "tasks": sorted(tasks) if tasks else None,
        "limit": limit,
        "seed": seed,
        "providers": {name: identity_of(provider) for name, provider in providers.items()},
    }
    return json.loads(json.dumps(identity, default=str))  # as it will read back from disk


def row_source(identity: Mapping[str, Any]) -> str:
    """A short hash of a provider's identity, stamped on each row it writes."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _belonging(sample_ids: set[str], sources: Mapping[str, str]) -> Callable[[Row], str | None]:
    """What is wrong with a row that another run, provider or config wrote (None: it is this run's)."""

    def wrong(row: Row) -> str | None:
        if row.sample_id not in sample_ids:
            return f"sample {row.sample_id!r} is not one of this run's samples"
        if row.provider not in sources:
            return f"provider {row.provider!r} is not one of this run's ({', '.join(sorted(sources))})"
        if row.source is not None and row.source != sources[row.provider]:
            return f"the row was written by another config of provider {row.provider!r}"
        return None

    return wrong


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k))


def record_run(
    out: Path, identity: dict[str, Any], sample_ids: set[str], *, restart: bool = False
) -> tuple[dict[str, Any], list[Row]]:
    """Check ``identity`` against the folder's run.json, and the rows already there against the run
    (``sample_ids`` and the providers' identities), then write the merged record, before any request;
    returns that record (its providers: this run's and those of earlier runs in ``out``) and the rows."""
    path = out / RUN_FILE
    if restart:
        if running := running_batches(out):
            raise RunError(
                f"{out} has {running} batch(es) still running; `mmbridge batch cancel {out}` first "
                "(their answers would be lost), then --restart"
            )
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / OFFLINE_FOLDER, ignore_errors=True)
    previous: dict[str, Any] | None = None
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(previous, dict) and isinstance(previous.get("providers"), dict)
        except (ValueError, AssertionError, UnicodeDecodeError):
            raise RunError(f"{path} is not a run record; rerun with --restart to start the folder afresh") from None
    if previous is not None:
        changes = []
        if previous.get("samples") != identity["samples"]:
            was = {k: previous.get(k) for k in ("dataset", "tasks", "limit", "seed")}
            now = {k: identity[k] for k in was}
            changes.append(f"the samples ({_changed(was, now) or 'same spec, different content'})")
        for name, mine in identity["providers"].items():
            theirs = previous["providers"].get(name)
            if theirs is not None and theirs != mine:
                changes.append(f"provider {name!r} ({_changed(theirs, mine)})")
        if changes:
            raise RunError(
                f"{out} holds a run that measured something else: {'; '.join(changes)}; "
                "use another --out, or --restart to start afresh"
            )
        identity = {**identity, "providers": {**previous["providers"], **identity["providers"]}}
    sources = {name: row_source(mine) for name, mine in identity["providers"].items()}
    rows = read_rows(out / ROWS_FILE, _belonging(sample_ids, sources))  # before run.json names this config
    with atomic_write(path) as f:
        json.dump(identity, f, indent=2)
    return identity, rows


def record_inputs(out: Path, samples: Sequence[Sample]) -> None:
    """Write the run's samples, each picture by its absolute path, so the run folder says what was
    asked without the dataset spec (which may be relative to where the run was started)."""
    with atomic_write(out / INPUTS_FILE) as f:
        for sample in samples:
            f.write(sample.model_copy(update={"image": sample.image.resolve()}).model_dump_json() + "\n")
