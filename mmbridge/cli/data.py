"""``mmbridge data shapes`` and ``mmbridge data info``: make the built-in benchmark, inspect any dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..bounds import Antialias, Gradient, Images, Quality, Seed, Side
from .bounded import option


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Generate and inspect datasets.", no_args_is_help=True)
    app.add_typer(data_app, name="data")

    @data_app.command("shapes")
    def shapes(
        out: Annotated[Path, typer.Option(help="Folder to write train/val/test.jsonl and images/ into.")],
        images: Annotated[int, option(Images, help="Images in all splits together (80/10/10).")] = 1000,
        seed: Annotated[int, option(Seed, help="Same seed, same bytes.")] = 0,
        size: Annotated[int, option(Side, help="Image width (and height) in pixels.")] = 64,
        height: Annotated[int | None, option(Side, help="Image height, when not square.")] = None,
        objects: Annotated[
            str, typer.Option(help="Objects per scene, LOW-HIGH within 1-16 (over 6: 16 colours).")
        ] = "2-6",
        antialias: Annotated[int, option(Antialias, help="Draw this many times larger, then shrink.")] = 1,
        jpeg: Annotated[int | None, option(Quality, help="Save as JPEG of this quality.")] = None,
        gradient: Annotated[int, option(Gradient, help="Background darkens this much across.")] = 0,
    ) -> None:
        """Generate the built-in shapes benchmark (vqa, caption and verify samples), saved as pictures
        are saved (PNG by default; anti-aliased, JPEG, a gradient background on request)."""
        from ..atomic import writable_folder
        from ..data.look import Look
        from ..data.shapes import Style, generate_shapes
        from ..data.spec import parse_objects
        from ..errors import DatasetError

        writable_folder(out)
        low, high = parse_objects("--objects", objects)
        try:
            style = Style.for_objects(low, high, image_size=size, height=height)
            manifest = generate_shapes(out, images=images, seed=seed, style=style, look=Look(antialias, jpeg, gradient))
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        for split, counts in manifest["splits"].items():
            typer.echo(f"{out / (split + '.jsonl')}: {counts['samples']} samples on {counts['images']} images")

    @data_app.command("info")
    def info(
        dataset: Annotated[str, typer.Argument(help="A .jsonl file, a COCO / VQA v2 .json, or builtin:shapes?...")],
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the cache dir).")] = None,
    ) -> None:
        """Validate a dataset (every line and every image path) and count its samples by task and type."""
        from collections import Counter

        from rich.console import Console
        from rich.table import Table

        from ..config import load_config
        from ..data import load_dataset

        loaded = load_dataset(dataset, cache_dir=load_config(config).cache.dir)
        counts = Counter((s.task.value, str(s.meta.get("type", "-"))) for s in loaded)
        table = Table("task", "type", "samples", title=f"{loaded.source}: {len(loaded)} samples")
        for (task, kind), n in sorted(counts.items()):
            table.add_row(task, kind, str(n))
        Console().print(table)
