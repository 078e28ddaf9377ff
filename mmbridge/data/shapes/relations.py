"""Spatial facts about a scene, each stated only when it holds with a clear margin (never a near tie)."""

from __future__ import annotations

import math

from .scene import Obj, Scene

__all__ = ["article", "closest", "furthest", "horizontal_side", "left_of", "above", "number_word", "vertical_side"]

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def margin(scene: Scene) -> float:
    """How far apart two centres must be before one is said to be left of / above the other."""
    return max(2.0, 0.05 * scene.width)


def _side(coordinate: int, extent: int, scene: Scene, names: tuple[str, str]) -> str | None:
    middle = extent / 2
    if coordinate < middle - margin(scene):
        return names[0]
    if coordinate > middle + margin(scene):
        return names[1]
    return None


def horizontal_side(o: Obj, scene: Scene) -> str | None:
    """'left' or 'right' half of the image, or None for an object near the middle."""
    return _side(o.x, scene.width, scene, ("left", "right"))


def vertical_side(o: Obj, scene: Scene) -> str | None:
    """'top' or 'bottom' half of the image, or None for an object near the middle."""
    return _side(o.y, scene.height, scene, ("top", "bottom"))


def left_of(a: Obj, b: Obj, scene: Scene) -> bool:
    return a.x < b.x - margin(scene)


def above(a: Obj, b: Obj, scene: Scene) -> bool:
    return a.y < b.y - margin(scene)


def _ranked(o: Obj, scene: Scene) -> list[tuple[float, Obj]]:
    return sorted(((math.hypot(o.x - p.x, o.y - p.y), p) for p in scene.objects if p is not o), key=lambda t: t[0])


def closest(o: Obj, scene: Scene) -> Obj | None:
    """The object nearest to ``o``, if it is nearer than the runner-up by a clear margin."""
    ranked = _ranked(o, scene)
    if not ranked or (len(ranked) > 1 and ranked[1][0] - ranked[0][0] < margin(scene)):
        return None
    return ranked[0][1]


def furthest(o: Obj, scene: Scene) -> Obj | None:
    ranked = _ranked(o, scene)
    if len(ranked) < 2 or ranked[-1][0] - ranked[-2][0] < margin(scene):
        return None  # with one other object, "furthest" and "closest" would be the same object
    return ranked[-1][1]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else str(n)
