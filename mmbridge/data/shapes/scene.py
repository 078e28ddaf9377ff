"""Scenes of the ``shapes`` benchmark: sampling non-overlapping objects and rendering them exactly."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

from PIL import Image as PILImage
from PIL import ImageDraw

__all__ = ["MANY_COLORS", "Obj", "Scene", "Style", "render", "sample_scene"]

#: sixteen colours, far enough apart to be told apart by eye and by the object finder; the first
#: six are the default style's, all sixteen for styles with more objects (each colour is unique in
#: its scene)
MANY_COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
    "purple": (140, 60, 180),
    "orange": (245, 130, 20),
    "cyan": (30, 200, 220),
    "pink": (250, 130, 200),
    "brown": (130, 80, 30),
    "gray": (120, 120, 120),
    "black": (20, 20, 20),
    "navy": (20, 30, 110),
    "lime": (160, 230, 40),
    "teal": (20, 120, 120),
    "maroon": (120, 20, 50),
    "olive": (110, 110, 20),
}


@dataclass(frozen=True)
class Style:
    """What a shapes dataset looks like; change it to make a differently styled dataset."""

    colors: dict[str, tuple[int, int, int]] = field(default_factory=lambda: dict(list(MANY_COLORS.items())[:6]))
    shapes: tuple[str, ...] = ("circle", "square", "triangle")
    image_size: int = 64  # the width; the height too unless ``height`` is set
    height: int | None = None
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

    @classmethod
    def for_objects(cls, low: int, high: int, **options: Any) -> Style:
        """A style for ``low`` to ``high`` objects a scene: over six, the sixteen colours and smaller
        objects (half-extents 4-6% of the side instead of 7-11%, so 16 fit apart in 128 pixels)."""
        crowded = {"colors": MANY_COLORS, "min_size": 0.04, "max_size": 0.06} if high > 6 else {}
        return cls(min_objects=low, max_objects=high, **{**crowded, **options})

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of a picture."""
        return self.image_size, self.height or self.image_size


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
_ATTEMPTS = 1000  # whole scenes drawn before a style is called too crowded


def sample_scene(rng: random.Random, style: Style) -> Scene:
    """A random scene: unique colours, objects inside the canvas, footprints ``_GAP`` px apart."""
    width, height = style.size
    side = min(width, height)  # object sizes are a share of the shorter side
    low = max(2, round(style.min_size * side))
    high = max(low, round(style.max_size * side))
    for _ in range(_ATTEMPTS):  # a crowded draw is retried from scratch; rare at the default settings
        count = rng.randint(style.min_objects, style.max_objects)
        colors = rng.sample(sorted(style.colors), count)
        placed: list[Obj] = []
        for color in colors:
            size = rng.randint(low, high)
            reach = math.ceil(size * _FOOTPRINT)
            for _ in range(200):
                x, y = rng.randint(reach, width - 1 - reach), rng.randint(reach, height - 1 - reach)
                if all(math.hypot(x - o.x, y - o.y) >= (size + o.size) * _FOOTPRINT + _GAP for o in placed):
                    placed.append(Obj(color, rng.choice(style.shapes), x, y, size))
                    break
            else:
                break
        if len(placed) == count:
            return Scene(width, height, tuple(placed), style.background_name)
    raise ValueError(
        f"{style.max_objects} objects do not fit apart in {width}x{height} pictures; "
        "use larger pictures or fewer objects"
    )


def render(
    scene: Scene, style: Style, canvas: PILImage.Image | None = None, scale: int = 1, shift: int = 0
) -> PILImage.Image:
    """Draw the scene onto ``canvas`` (``scale`` times the scene's size, everything moved by
    ``shift`` canvas pixels; by default a blank one at size), without anti-aliasing: at scale 1
    every object pixel has exactly its colour."""
    im = canvas if canvas is not None else PILImage.new("RGB", (scene.width, scene.height), style.background)
    draw = ImageDraw.Draw(im)
    k, edge = scale, scale - 1  # a pixel at scale 1 covers k x k canvas pixels
    for o in scene.objects:
        fill = style.colors[o.color]
        x, y, r = o.x * k + shift, o.y * k + shift, o.size * k
        box = (x - r, y - r, x + r + edge, y + r + edge)
        if o.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif o.shape == "square":
            draw.rectangle(box, fill=fill)
        else:  # triangle pointing up, centred on its bounding box
            draw.polygon([(x + edge / 2, y - r), (x - r, y + r + edge), (x + r + edge, y + r + edge)], fill=fill)
    return im
