"""Turn what a user passes as a dataset (a file, a COCO or VQA JSON, ``builtin:shapes?...``) into a Dataset."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ..errors import DatasetError
from .coco import read_coco_captions, read_vqa_v2
from .jsonl import read_jsonl
from .sample import Dataset

__all__ = ["DEFAULT_SHAPES", "load_dataset", "shapes_dir"]

#: defaults of ``builtin:shapes``; any of them can be set in the query string
DEFAULT_SHAPES = {"split": "test", "images": "2000", "seed": "0", "size": "64"}
#: the most images a built-in data set is generated with (a million 64x64 PNGs: about 1 GB)
MAX_IMAGES = 1_000_000
#: each built-in data set and the defaults of its options (``builtin:NAME?key=value&...``)
BUILTINS = {"shapes": DEFAULT_SHAPES, "sort-of-clevr": {"split": "test", "images": "10000", "seed": "0"}}


def _query(text: str, spec: str, allowed: set[str]) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError:
        raise DatasetError(f"{spec}: cannot parse the options after '?'; write them as key=value&key=value") from None
    options = dict(pairs)
    unknown = set(options) - allowed
    if unknown:
        raise DatasetError(
            f"{spec}: unknown option(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )
    return options


def shapes_dir(cache_dir: Path, images: int, seed: int, size: int) -> Path:
    """The built-in shapes data set for these settings, generated into ``cache_dir`` on first use."""
    from .shapes import GENERATOR_VERSION, Style, generate_shapes
    from .shapes.build import MANIFEST

    name = f"shapes-v{GENERATOR_VERSION}-n{images}-seed{seed}-px{size}"
    return _generated(cache_dir / "datasets" / name, MANIFEST, generate_shapes, images, seed, Style(image_size=size))


def _generated(target: Path, manifest: str, generate: Any, images: int, seed: int, style: Any = None) -> Path:
    """``target``, generated on first use.

    Generation happens in a temporary folder renamed into place, so a killed run leaves nothing
    half-written and two processes racing both end with the same complete folder.
    """
    if (target / manifest).is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    except OSError as exc:
        raise DatasetError(
            f"cannot write the built-in data set under {target.parent.parent} ({exc.strerror or exc}); "
            "point [cache] dir in mmbridge.toml at a writable folder"
        ) from None
    tmp.chmod(0o755)  # mkdtemp makes it private; the data set is not
    try:
        generate(tmp, images=images, seed=seed, **({"style": style} if style is not None else {}))
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / manifest).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _builtin(spec: str, cache_dir: Path) -> Dataset:
    name, _, query = spec.removeprefix("builtin:").partition("?")
    if name not in BUILTINS:
        raise DatasetError(f"{spec}: unknown built-in dataset {name!r}; available: {', '.join(BUILTINS)}")
    defaults = BUILTINS[name]
    options = {**defaults, **_query(query, spec, set(defaults))}
    if options["split"] not in ("train", "val", "test"):
        raise DatasetError(f"{spec}: split must be train, val or test, got {options['split']!r}")
    try:
        images, seed, size = int(options["images"]), int(options["seed"]), int(options.get("size", 75))
    except ValueError:
        raise DatasetError(f"{spec}: images, seed and size must be whole numbers") from None
    if not (3 <= images <= MAX_IMAGES and 16 <= size <= 1024):
        raise DatasetError(
            f"{spec}: need 3 <= images <= {MAX_IMAGES:,} (one per split at least) and 16 <= size <= 1024"
        )
    if name == "sort-of-clevr":
        from .sort_of_clevr import GENERATOR_VERSION, MANIFEST, generate_sort_of_clevr

        target = cache_dir / "datasets" / f"sort-of-clevr-v{GENERATOR_VERSION}-n{images}-seed{seed}"
        folder = _generated(target, MANIFEST, generate_sort_of_clevr, images, seed)
    else:
        folder = shapes_dir(cache_dir, images, seed, size)
    dataset = read_jsonl(folder / f"{options['split']}.jsonl")
    dataset.source = spec
    dataset.meta = {"builtin": name, **options, "folder": str(folder)}
    return dataset


def load_dataset(spec: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Read a dataset: a ``.jsonl`` file in the project's format, a COCO captions JSON, a VQA v2
    questions JSON (its annotations file found beside it), or ``builtin:shapes?split=test&images=N&seed=S``.

    COCO and VQA files take ``?images=DIR`` (and VQA ``?annotations=FILE``) when the images are not
    in the usual place. Every image is checked to exist before this returns.
    """
    text = os.fspath(spec)
    if text.startswith("builtin:"):
        return _builtin(text, Path(cache_dir) if cache_dir is not None else Path(".mmbridge/cache"))
    path_text, _, query = text.partition("?")
    path = Path(path_text)
    if path.is_dir():
        raise DatasetError(f"{path} is a folder; point at a .jsonl file inside it (e.g. {path / 'test.jsonl'})")
    if not path.is_file():
        raise DatasetError(f"dataset file {path} does not exist")
    if path.suffix == ".jsonl":
        _query(query, text, set())
        return read_jsonl(path)
    if path.suffix != ".json":
        raise DatasetError(f"{path}: unknown dataset format; use .jsonl (see the README) or a COCO / VQA v2 .json")
    options = _query(query, text, {"images", "annotations"})
    with path.open(encoding="utf-8") as f:
        head = f.read(4096)
    if '"questions"' in head or "questions" in path.name:
        return read_vqa_v2(path, options.get("annotations"), options.get("images"))
    if "annotations" in options:
        raise DatasetError(f"{text}: 'annotations' is only for VQA v2 questions files")
    try:
        return read_coco_captions(path, options.get("images"))
    except DatasetError as exc:
        if "field" in str(exc) and "caption" in str(exc):
            raise DatasetError(f"{path}: neither a COCO captions file nor VQA v2 questions ({exc})") from None
        raise
