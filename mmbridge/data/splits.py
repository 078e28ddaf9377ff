"""Write a generated data set split by split: images in order, 80% train, 10% val, 10% test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..batch import progress_bar
from .jsonl import write_jsonl
from .sample import Sample

__all__ = ["write_in_order"]


def write_in_order(
    root: Path, images: int, label: str, make: Callable[[str, int], list[Sample]], progress: bool | None
) -> dict[str, dict[str, int]]:
    """Call ``make(split, index)`` for image 0 .. images-1 (the first 80% train, then val, then
    test), write each split's samples to ``root``/SPLIT.jsonl and return the counts per split."""
    from .shapes.build import split_sizes

    sizes = split_sizes(images, 0.1, 0.1)
    bounds = {"train": (0, sizes["train"]), "val": (sizes["train"], sizes["train"] + sizes["val"])}
    bounds["test"] = (bounds["val"][1], images)
    counts = {}
    with progress_bar(progress, label) as bar:
        task = bar.add_task(label, total=images, failed=0) if bar is not None else None
        for split, (first, end) in bounds.items():
            samples = []
            for index in range(first, end):
                samples += make(split, index)
                if bar is not None:
                    bar.update(task, advance=1)
            write_jsonl(samples, root / f"{split}.jsonl")
            counts[split] = {"images": end - first, "samples": len(samples)}
    return counts
