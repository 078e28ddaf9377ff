"""Scenes of the ``shapes`` benchmark: sampling non-overlapping objects and rendering them exactly."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image as PILImage
from PIL import ImageDraw

__all__ = ["Obj", "Scene", "Style", "render", "sample_scene"]


@dataclass(frozen=True)
class Style:
    """What a shapes dataset looks like; change it to make a differently styled dataset."""

    colors: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: {
            "red": (220, 40, 40),
            "green": (40, 170, 60),
            "blue": (40, 80, 220),
            "yellow": (230, 200, 30),
            "purple": (140, 60, 180),
            "orange": (245, 130, 20),
        }
    )
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    image_size: int = 64
    background: tuple[int, int, int] = (255, 255, 255)
    background_name: str = "white"
    min_objects: int = 2
    max_objects: int = 6
    #: half-extent of an object as a share of the image side
    min_size: float = 0.07
    max_size: float = 0.11

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects <= len(self.colors):
            raise ValueError("need 1 <= min_objects <= max_objects <= number of colors (colors are unique)")
        unknown = set(self.shapes) - {"circle", "square", "triangle"}
        if unknown:
            raise ValueError(f"unknown shapes {sorted(unknown)}; the renderer draws circle, square, triangle")


@dataclass(frozen=True)
class Obj:
    """One object: its colour (unique in the scene), shape, centre in pixels and half-extent in pixels."""

    color: str
    shape: str
    x: int
    y: int
    size: int


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    objects: tuple[Obj, ...]
    background: str = "white"

    def to_meta(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "background": self.background,
            "objects": [asdict(o) for o in self.objects],
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Scene:
        objects = tuple(Obj(**o) for o in meta["objects"])
        return cls(meta["width"], meta["height"], objects, meta.get("background", "white"))

    def by_color(self, color: str) -> Obj:
        return next(o for o in self.objects if o.color == color)


#: an object's footprint fits in a circle of this many half-extents (a square's corner: sqrt 2)
_FOOTPRINT = 1.45
_GAP = 2  # pixels of white between any two footprints


def sample_scene(rng: random.Random, style: Style) -> Scene:
    """A random scene: unique colours, objects inside the canvas, footprints ``_GAP`` px apart."""
    side = style.image_size
    low = max(2, round(style.min_size * side))
    high = max(low, round(style.max_size * side))
    while True:  # a crowded draw is retried from scratch; rare at the default settings
        count = rng.randint(style.min_objects, style.max_objects)
        colors = rng.sample(sorted(style.colors), count)
        placed: list[Obj] = []
        for color in colors:
            size = rng.randint(low, high)
            reach = math.ceil(size * _FOOTPRINT)
            for _ in range(200):
                x, y = rng.randint(reach, side - 1 - reach), rng.randint(reach, side - 1 - reach)
                if all(math.hypot(x - o.x, y - o.y) >= (size + o.size) * _FOOTPRINT + _GAP for o in placed):
                    placed.append(Obj(color, rng.choice(style.shapes), x, y, size))
                    break
            else:
                break
        if len(placed) == count:
            return Scene(side, side, tuple(placed), style.background_name)


def render(scene: Scene, style: Style) -> PILImage.Image:
    """Draw the scene without anti-aliasing, so every object pixel has exactly its colour."""
    im = PILImage.new("RGB", (scene.width, scene.height), style.background)
    draw = ImageDraw.Draw(im)
    for o in scene.objects:
        fill = style.colors[o.color]
        box = (o.x - o.size, o.y - o.size, o.x + o.size, o.y + o.size)
        if o.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif o.shape == "square":
            draw.rectangle(box, fill=fill)
        else:  # triangle pointing up, centred on its bounding box
            draw.polygon([(o.x, o.y - o.size), (o.x - o.size, o.y + o.size), (o.x + o.size, o.y + o.size)], fill=fill)
    return im
