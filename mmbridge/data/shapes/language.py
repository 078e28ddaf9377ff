"""Captions (five true phrasings per scene) and true/false statements for the shapes benchmark."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from . import relations as rel
from .scene import Obj, Scene, Style

__all__ = ["Statement", "captions", "statement"]


def _name(o: Obj) -> str:
    return f"{rel.article(o.color)} {o.color} {o.shape}"


def _listing(objects: list[Obj]) -> str:
    names = [_name(o) for o in objects]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _pairs(scene: Scene) -> list[tuple[Obj, Obj]]:
    return [(a, b) for a in scene.objects for b in scene.objects if a is not b]


def captions(scene: Scene, rng: random.Random, count: int = 5) -> list[str]:
    """``count`` different captions, each true of the scene; objects are named by colour and shape."""
    objects = sorted(scene.objects, key=lambda o: (o.x, o.y))
    n = len(objects)
    shapes = "shapes" if n > 1 else "shape"
    pool = [
        _listing(objects),
        f"{rel.number_word(n)} {shapes} on a {scene.background} background: {_listing(objects)}",
        f"from left to right, {_listing(objects)}",
        f"a {scene.background} image with {rel.number_word(n)} colored {shapes}",
        f"{_listing(sorted(objects, key=lambda o: o.color))} on {scene.background}",
    ]
    lefts = [(a, b) for a, b in _pairs(scene) if rel.left_of(a, b, scene)]
    aboves = [(a, b) for a, b in _pairs(scene) if rel.above(a, b, scene)]
    if lefts:
        a, b = rng.choice(lefts)
        pool.append(f"{_name(a)} to the left of {_name(b)}")
    if aboves:
        a, b = rng.choice(aboves)
        pool.append(f"{_name(a)} above {_name(b)}")
    for o in objects:
        near = rel.closest(o, scene)
        if near is not None:
            pool.append(f"{_name(o)} next to {_name(near)}")
            break
    pool = list(dict.fromkeys(pool))  # a one-object scene makes some phrasings coincide
    rng.shuffle(pool)
    return pool[:count]


@dataclass(frozen=True)
class Statement:
    kind: str  # attribute | count | spatial
    text: str
    label: bool


def _attribute(scene: Scene, style: Style, truth: bool, rng: random.Random) -> Statement | None:
    o = rng.choice(scene.objects)
    shape = o.shape if truth else rng.choice([s for s in style.shapes if s != o.shape])
    return Statement("attribute", f"the {o.color} object is {rel.article(shape)} {shape}", truth)


def _count(scene: Scene, style: Style, truth: bool, rng: random.Random) -> Statement | None:
    shape = rng.choice(style.shapes)
    actual = Counter(o.shape for o in scene.objects)[shape]
    if truth:
        n = actual
    else:
        wrong = [k for k in (actual - 1, actual + 1, actual + 2) if 0 <= k <= style.max_objects]
        n = rng.choice(wrong)
    if n == 0:
        text = f"there are no {shape}s"
    elif n == 1:
        text = f"there is exactly one {shape}"
    else:
        text = f"there are exactly {rel.number_word(n)} {shape}s"
    return Statement("count", text, truth)


def _spatial(scene: Scene, style: Style, truth: bool, rng: random.Random) -> Statement | None:
    facts = [(a, b, "to the left of") for a, b in _pairs(scene) if rel.left_of(a, b, scene)]
    facts += [(a, b, "above") for a, b in _pairs(scene) if rel.above(a, b, scene)]
    if not facts:
        return None
    a, b, relation = rng.choice(facts)
    if not truth:
        a, b = b, a  # clearly true one way round, so clearly false the other
    return Statement("spatial", f"the {a.color} object is {relation} the {b.color} object", truth)


_KINDS = {"attribute": _attribute, "count": _count, "spatial": _spatial}


def statement(scene: Scene, style: Style, truth: bool, rng: random.Random) -> Statement:
    """A statement of a random kind whose truth value is ``truth``."""
    kinds = list(_KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        made = _KINDS[kind](scene, style, truth, rng)
        if made is not None:
            return made
    raise AssertionError("attribute statements exist for every scene")
