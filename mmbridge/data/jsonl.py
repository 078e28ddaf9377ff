"""The project's dataset format: JSON Lines, one sample a line, image paths relative to the file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from ..atomic import atomic_write
from ..errors import DatasetError
from .sample import Dataset, Sample

__all__ = ["check_images", "read_jsonl", "write_jsonl"]


def read_jsonl(path: str | os.PathLike[str]) -> Dataset:
    """Read and validate every line, then check that every image exists, before returning."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"dataset file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it: {exc}") from None
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{where}: a line must be a JSON object, got {type(data).__name__}")
        if isinstance(data.get("image"), str):
            data["image"] = Path(os.path.abspath(path.parent / data["image"]))
        try:
            sample = Sample.model_validate(data)
        except ValidationError as exc:
            raise DatasetError(f"{where}: {_field_error(exc)}") from None
        if sample.id in seen:
            raise DatasetError(f"{where}: field 'id': {sample.id!r} was already used on line {seen[sample.id]}")
        seen[sample.id] = number
        samples.append(sample)
    check_images(samples, path, line_of=seen)
    return Dataset(samples, str(path))


def _field_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"unknown field {loc!r}"
    if err["type"] == "missing":
        return f"field {loc!r} is missing"
    return f"field {loc!r}: {message}" if loc else message


def check_images(samples: Iterable[Sample], source: Path, line_of: dict[str, int] | None = None) -> None:
    """Raise DatasetError naming the first sample whose image file is missing (stat only, no decode)."""
    checked: set[Path] = set()
    for sample in samples:
        if sample.image in checked:
            continue
        if not sample.image.is_file():
            where = f"{source}:{line_of[sample.id]}" if line_of else f"{source}: sample {sample.id!r}"
            raise DatasetError(f"{where}: field 'image': file {sample.image} does not exist")
        checked.add(sample.image)


def write_jsonl(samples: Iterable[Sample], path: str | os.PathLike[str]) -> None:
    """Write samples atomically (a temporary file renamed into place), image paths relative to ``path``."""
    path = Path(path)
    with atomic_write(path) as out:
        for sample in samples:
            data = sample.model_dump(mode="json", exclude_none=True)
            data["image"] = Path(os.path.relpath(sample.image, path.parent)).as_posix()
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
