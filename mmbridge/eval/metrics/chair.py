"""CHAIR (Rohrbach et al. 2018): how often captions mention objects that are not in the scene."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["chair", "chair_counts", "mentions"]

_WORD = re.compile(r"[a-z]+")


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def mentions(caption: str, shapes: Iterable[str], colors: Iterable[str]) -> list[tuple[str | None, str]]:
    """(colour or None, shape) for every shape word in ``caption``, with the colour word right before it."""
    shapes, colors = set(shapes), set(colors)
    words = _WORD.findall(caption.lower())
    found = []
    for i, word in enumerate(words):
        shape = _singular(word)
        if shape in shapes:
            color = words[i - 1] if i > 0 and words[i - 1] in colors else None
            found.append((color, shape))
    return found


def chair_counts(hyps: Mapping[str, str], scenes: Mapping[str, Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    """Per caption (in ``hyps`` order): how many object mentions, and how many of them hallucinated."""
    shapes = {o["shape"] for scene in scenes.values() for o in scene["objects"]}
    colors = {o["color"] for scene in scenes.values() for o in scene["objects"]}
    mentioned, hallucinated = [], []
    for key, caption in hyps.items():
        objects = {(o["color"], o["shape"]) for o in scenes[key]["objects"]}
        found = mentions(caption, shapes, colors)
        bad = [(c, s) for c, s in found if not any(s == sh and (c is None or c == co) for co, sh in objects)]
        mentioned.append(len(found))
        hallucinated.append(len(bad))
    return mentioned, hallucinated


def chair(hyps: Mapping[str, str], scenes: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """CHAIR-i (hallucinated mentions / all mentions) and CHAIR-s (captions with one / all captions).

    A scene lists its objects (``{"objects": [{"color": ..., "shape": ...}, ...]}``). A mention is a
    shape word, with the colour word just before it when there is one; it is hallucinated when no
    object in the scene has that shape (and that colour, if named). The vocabulary is the shapes
    and colours seen across all scenes scored together.
    """
    mentioned, hallucinated = chair_counts(hyps, scenes)
    total = sum(mentioned)
    return {
        "chair_i": sum(hallucinated) / total if total else 0.0,
        "chair_s": sum(1 for h in hallucinated if h) / len(hyps) if hyps else 0.0,
    }
