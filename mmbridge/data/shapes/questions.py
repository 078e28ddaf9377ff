"""VQA question families of the shapes benchmark, and a balancer that keeps answers near uniform."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from . import relations as rel
from .scene import Scene, Style

__all__ = ["FAMILIES", "Balancer", "Question", "candidates"]

FAMILIES = ("attribute", "position", "count", "exist", "relational")


@dataclass(frozen=True)
class Question:
    family: str
    subtype: str
    question: str
    answer: str
    choices: tuple[str, ...]


def _attribute(scene: Scene, style: Style) -> list[Question]:
    out = [
        Question("attribute", "shape_of_color", f"What shape is the {o.color} object?", o.shape, style.shapes)
        for o in scene.objects
    ]
    shape_counts = Counter(o.shape for o in scene.objects)
    colors = tuple(sorted(style.colors))
    out += [
        Question("attribute", "color_of_shape", f"What color is the {o.shape}?", o.color, colors)
        for o in scene.objects
        if shape_counts[o.shape] == 1
    ]
    return out


def _position(scene: Scene, style: Style) -> list[Question]:
    out = []
    for o in scene.objects:
        side = rel.horizontal_side(o, scene)
        if side:
            q = f"Is the {o.color} object on the left or on the right?"
            out.append(Question("position", "left_right", q, side, ("left", "right")))
        side = rel.vertical_side(o, scene)
        if side:
            q = f"Is the {o.color} object at the top or at the bottom?"
            out.append(Question("position", "top_bottom", q, side, ("top", "bottom")))
    return out


def _count(scene: Scene, style: Style) -> list[Question]:
    numbers = tuple(str(n) for n in range(style.max_objects + 1))
    counts = Counter(o.shape for o in scene.objects)
    out = [
        Question("count", "shape", f"How many {shape}s are there?", str(counts[shape]), numbers)
        for shape in style.shapes
    ]
    out.append(Question("count", "objects", "How many objects are there?", str(len(scene.objects)), numbers))
    return out


def _exist(scene: Scene, style: Style) -> list[Question]:
    present = {(o.color, o.shape) for o in scene.objects}
    return [
        Question(
            "exist",
            "color_shape",
            f"Is there {rel.article(c)} {c} {s}?",
            "yes" if (c, s) in present else "no",
            ("yes", "no"),
        )
        for c in sorted(style.colors)
        for s in style.shapes
    ]


def _relational(scene: Scene, style: Style) -> list[Question]:
    colors = tuple(sorted(style.colors))
    out = []
    for o in scene.objects:
        for word, target in (("closest to", rel.closest(o, scene)), ("furthest from", rel.furthest(o, scene))):
            if target is None:
                continue
            kind = word.split()[0]
            out.append(
                Question(
                    "relational",
                    f"{kind}_color",
                    f"What color is the object {word} the {o.color} object?",
                    target.color,
                    colors,
                )
            )
            out.append(
                Question(
                    "relational",
                    f"{kind}_shape",
                    f"What shape is the object {word} the {o.color} object?",
                    target.shape,
                    style.shapes,
                )
            )
    return out


_BUILDERS = {
    "attribute": _attribute,
    "position": _position,
    "count": _count,
    "exist": _exist,
    "relational": _relational,
}


def candidates(scene: Scene, style: Style, family: str) -> list[Question]:
    """Every question of ``family`` that has one clear answer in ``scene``."""
    return _BUILDERS[family](scene, style)


class Balancer:
    """Picks, per family, the candidate whose answer has been used least so far.

    Scenes make some answers far more available than others (most colour/shape pairs are absent,
    so "is there a ..." is usually "no"); choosing the least-used available answer flattens that.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def pick(self, options: list[Question]) -> Question | None:
        if not options:
            return None
        used = self.used[options[0].family]
        by_answer: defaultdict[str, list[Question]] = defaultdict(list)
        for q in options:
            by_answer[q.answer].append(q)
        fewest = min(used[a] for a in by_answer)
        answer = self.rng.choice(sorted(a for a in by_answer if used[a] == fewest))
        used[answer] += 1
        return self.rng.choice(by_answer[answer])
