"""Turn what a user passes as a dataset (a file, a COCO or VQA JSON, ``builtin:shapes?...``) into a Dataset."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ..bounds import Antialias, Count, Gradient, Images, Seed, Side, check
from ..errors import DatasetError
from .coco import read_coco_captions, read_vqa_v2
from .jsonl import read_jsonl
from .sample import Dataset

__all__ = ["DEFAULT_SHAPES", "load_dataset", "parse_objects", "shapes_dir"]

#: defaults of ``builtin:shapes``; any of them can be set in the query string
DEFAULT_SHAPES = {"split": "test", "images": "2000", "seed": "0", "size": "64"}
#: how the pictures of any built-in data set may be saved (look.py), off by default
LOOK = {"antialias": "1", "jpeg": "0", "gradient": "0"}
#: each built-in data set and the defaults of its options (``builtin:NAME?key=value&...``)
BUILTINS = {
    "shapes": {**DEFAULT_SHAPES, "height": "0", "objects": "2-6", **LOOK},
    "sort-of-clevr": {"split": "test", "images": "10000", "seed": "0", "size": "75", "height": "0", **LOOK},
    "renders": {"split": "test", "images": "10000", "seed": "0", "size": "128", "height": "96", "jpeg": "80"},
}
#: the bound of every whole-number option (height 0: square; jpeg 0: PNG)
_BOUNDS = {
    "images": Images,
    "seed": Seed,
    "size": Side,
    "height": Count(0, 1024),
    "antialias": Antialias,
    "jpeg": Count(0, 95),
    "gradient": Gradient,
}


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


def shapes_dir(cache_dir: Path, images: int, seed: int, size: int, **options: Any) -> Path:
    """The built-in shapes data set for these settings, generated into ``cache_dir`` on first use.

    ``options``: ``height``, ``objects`` ("low-high"), and the look's ``antialias``, ``jpeg``, ``gradient``."""
    from .shapes import GENERATOR_VERSION, Style, generate_shapes
    from .shapes.build import MANIFEST

    style = Style.for_objects(*options.get("objects", (2, 6)), image_size=size, height=options.get("height") or None)
    look = _look(options)
    name = f"shapes-v{GENERATOR_VERSION}-n{images}-seed{seed}-px{size}" + _suffix(options, style=style)

    def generate(out: Path, images: int, seed: int) -> Any:
        return generate_shapes(out, images=images, seed=seed, style=style, look=look)

    return _generated(cache_dir / "datasets" / name, MANIFEST, generate, images, seed)


def _look(options: dict[str, Any]) -> Any:
    from .look import Look

    return Look(options.get("antialias", 1), options.get("jpeg") or None, options.get("gradient", 0))


def _suffix(options: dict[str, Any], style: Any = None) -> str:
    """What sets a data set's folder apart from the default one of its kind ("" for the default,
    so folders made before these options existed are found again)."""
    parts = [f"-h{options['height']}" if options.get("height") else ""]
    if style is not None and (style.min_objects, style.max_objects) != (2, 6):
        parts.append(f"-o{style.min_objects}-{style.max_objects}")
    look = _look(options)
    if not look.plain:
        parts.append(f"-aa{look.antialias}-q{look.jpeg or 0}-g{look.gradient}")
    return "".join(parts)


def _generated(target: Path, manifest: str, generate: Any, images: int, seed: int) -> Path:
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
        try:
            generate(tmp, images=images, seed=seed)
        except ValueError as exc:  # settings the generator cannot honour (e.g. too crowded)
            raise DatasetError(f"cannot generate {target.name}: {exc}") from None
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / manifest).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _renders_dir(spec: str, cache_dir: Path, numbers: dict[str, int]) -> Path:
    """The built-in renders data set for these settings, generated into ``cache_dir`` on first use."""
    from .renders import GENERATOR_VERSION, MANIFEST, generate_renders

    width, height, quality = numbers["size"], numbers["height"] or numbers["size"], numbers["jpeg"] or 80
    if min(width, height) < 48:
        raise DatasetError(f"{spec}: renders need 48 pixels a side or more")

    def generate(out: Path, images: int, seed: int) -> Any:
        return generate_renders(out, images=images, seed=seed, width=width, height=height, quality=quality)

    name = f"renders-v{GENERATOR_VERSION}-n{numbers['images']}-seed{numbers['seed']}-{width}x{height}-q{quality}"
    return _generated(cache_dir / "datasets" / name, MANIFEST, generate, numbers["images"], numbers["seed"])


def _numbers(spec: str, options: dict[str, str]) -> dict[str, int]:
    """The whole-number options, each checked against its range."""
    out = {}
    for key in set(options) & set(_BOUNDS):
        try:
            out[key] = check(_BOUNDS[key], options[key], key)
        except ValueError as exc:
            raise DatasetError(f"{spec}: {exc}") from None
    return out


def parse_objects(where: str, text: str) -> tuple[int, int]:
    """``LOW-HIGH`` (or one number): how many objects a shapes scene holds, 1 to 16."""
    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise DatasetError(f"{where}: objects must be a number or a range like 12-16, got {text!r}") from None
    if not 1 <= bounds[0] <= bounds[1] <= 16:
        raise DatasetError(f"{where}: objects must lie in 1-16, low first, got {text!r}")
    return bounds


def _builtin(spec: str, cache_dir: Path) -> Dataset:
    name, _, query = spec.removeprefix("builtin:").partition("?")
    if name not in BUILTINS:
        raise DatasetError(f"{spec}: unknown built-in dataset {name!r}; available: {', '.join(BUILTINS)}")
    defaults = BUILTINS[name]
    options = {**defaults, **_query(query, spec, set(defaults))}
    if options["split"] not in ("train", "val", "test"):
        raise DatasetError(f"{spec}: split must be train, val or test, got {options['split']!r}")
    numbers = _numbers(spec, options)
    if name == "renders":
        folder = _renders_dir(spec, cache_dir, numbers)
    elif name == "sort-of-clevr":
        from .sort_of_clevr import GENERATOR_VERSION, MANIFEST, generate_sort_of_clevr

        width, height = numbers["size"], numbers["height"] or numbers["size"]
        if min(width, height) < 40:
            raise DatasetError(f"{spec}: Sort-of-CLEVR needs 40 pixels a side or more for its six objects")
        look = _look(numbers)
        suffix = (f"-{width}x{height}" if (width, height) != (75, 75) else "") + _suffix({**numbers, "height": 0})

        def generate(out: Path, images: int, seed: int) -> Any:
            return generate_sort_of_clevr(out, images=images, seed=seed, width=width, height=height, look=look)

        folder_name = f"sort-of-clevr-v{GENERATOR_VERSION}-n{numbers['images']}-seed{numbers['seed']}{suffix}"
        folder = _generated(
            cache_dir / "datasets" / folder_name, MANIFEST, generate, numbers["images"], numbers["seed"]
        )
    else:
        extra = {k: v for k, v in numbers.items() if k not in ("images", "seed", "size")}
        folder = shapes_dir(
            cache_dir,
            numbers["images"],
            numbers["seed"],
            numbers["size"],
            objects=parse_objects(spec, options["objects"]),
            **extra,
        )
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
