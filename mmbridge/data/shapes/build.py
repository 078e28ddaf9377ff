"""Write a shapes dataset: PNGs plus train/val/test JSON Lines, byte-identical for the same seed."""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ...batch import progress_bar
from ...types import Task
from ..jsonl import write_jsonl
from ..look import Look
from ..sample import Sample
from .language import captions, statement
from .questions import FAMILIES, Balancer, candidates
from .scene import Scene, Style, render, sample_scene

__all__ = ["GENERATOR_VERSION", "MANIFEST", "generate_shapes", "split_sizes"]

#: bump when the same seed would produce different data, so caches regenerate
GENERATOR_VERSION = 1
MANIFEST = "shapes.json"
SPLITS = ("train", "val", "test")


def split_sizes(images: int, val_fraction: float, test_fraction: float) -> dict[str, int]:
    """Images per split; val and test get at least one image each once there are three or more."""
    val = max(1, round(images * val_fraction)) if images >= 3 and val_fraction > 0 else 0
    test = max(1, round(images * test_fraction)) if images >= 3 and test_fraction > 0 else 0
    return {"train": images - val - test, "val": val, "test": test}


def _samples_for(
    scene: Scene, index: int, split: str, image: Path, style: Style, balancer: Balancer, text_rng: random.Random
) -> list[Sample]:
    base = f"{split}-{index:06d}"
    scene_meta = scene.to_meta()
    out = []
    for family in FAMILIES:
        q = balancer.pick(candidates(scene, style, family))
        if q is None:
            continue
        out.append(
            Sample(
                id=f"{base}-{family}",
                image=image,
                task=Task.VQA,
                question=q.question,
                answers=[q.answer],
                choices=list(q.choices),
                meta={"type": family, "subtype": q.subtype, "scene": scene_meta},
            )
        )
    out.append(
        Sample(
            id=f"{base}-caption",
            image=image,
            task=Task.CAPTION,
            references=captions(scene, text_rng),
            meta={"type": "caption", "scene": scene_meta},
        )
    )
    truths = [True, False]
    text_rng.shuffle(truths)
    for n, truth in enumerate(truths):
        st = statement(scene, style, truth, text_rng)
        out.append(
            Sample(
                id=f"{base}-verify{n}",
                image=image,
                task=Task.VERIFY,
                statement=st.text,
                label=st.label,
                meta={"type": st.kind, "scene": scene_meta},
            )
        )
    return out


def generate_shapes(
    out: str | os.PathLike[str],
    images: int = 1000,
    seed: int = 0,
    *,
    style: Style | None = None,
    look: Look | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Generate ``images`` scenes into ``out`` and return the manifest (also written to shapes.json).

    Each image belongs to exactly one split. Per image: one question per vqa family (answers
    balanced within the family by :class:`Balancer`), one caption sample with five references,
    and two verify statements, one true and one false. ``look`` says how the pictures are saved
    (anti-aliased, JPEG, a background gradient; see look.py): the scenes and questions are the
    same for any look.
    """
    if images < 1:
        raise ValueError("images must be at least 1")
    style, look = style or Style(), look or Look()
    root = Path(out)
    (root / "images").mkdir(parents=True, exist_ok=True)
    sizes = split_sizes(images, val_fraction, test_fraction)
    order = list(range(images))
    random.Random(f"shapes-split:{seed}").shuffle(order)
    assignment = {
        "test": sorted(order[: sizes["test"]]),
        "val": sorted(order[sizes["test"] : sizes["test"] + sizes["val"]]),
    }
    assignment["train"] = sorted(order[sizes["test"] + sizes["val"] :])
    counts: dict[str, dict[str, int]] = {}
    with progress_bar(progress, "generating shapes") as bar:
        task = bar.add_task("generating shapes", total=images, failed=0) if bar is not None else None
        for split in SPLITS:
            balancer = Balancer(random.Random(f"shapes-questions:{seed}:{split}"))
            text_rng = random.Random(f"shapes-text:{seed}:{split}")
            samples: list[Sample] = []
            for index in assignment[split]:
                scene = sample_scene(random.Random(f"shapes:{seed}:{index}"), style)
                canvas = look.canvas(scene.width, scene.height, style.background, random.Random(f"look:{seed}:{index}"))
                image = look.save(
                    render(scene, style, canvas, look.scale, look.shift), root / "images" / f"{index:06d}"
                )
                samples += _samples_for(scene, index, split, image, style, balancer, text_rng)
                if bar is not None:
                    bar.update(task, advance=1)
            write_jsonl(samples, root / f"{split}.jsonl")
            counts[split] = {"images": len(assignment[split]), "samples": len(samples)}
    manifest = {
        "generator": "shapes",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "images": images,
        "splits": counts,
        "style": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(style).items()},
    }
    if not look.plain:
        manifest["look"] = look.to_dict()
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")  # written last: marks a complete dataset
    return manifest
