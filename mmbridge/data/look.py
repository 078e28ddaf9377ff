"""How a generated picture is saved: the ways pictures as users have them differ from clean PNGs.

A scene generator draws onto ``Look.canvas`` (``Look.scale`` times larger than the picture, with
the background gradient already laid; every drawing moved by ``Look.shift``) and hands the
drawing to ``Look.save``, which shrinks it
with a box filter (anti-aliased edges, as any drawing program or renderer makes them) and writes a
PNG or a JPEG. The default look is the clean one: drawn at size, flat background, PNG, and the
bytes are those the generators wrote before looks existed.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..bounds import Antialias, Gradient, Quality, check

__all__ = ["Look"]


@dataclass(frozen=True)
class Look:
    #: drawn this many times larger, then shrunk: 1 is pixel-exact, 4 gives anti-aliased edges
    antialias: int = 1
    #: JPEG quality (1-95), or None for PNG
    jpeg: int | None = None
    #: the background darkens by this many levels from one side of the picture to the other, in a
    #: random direction per picture (0: flat)
    gradient: int = 0

    def __post_init__(self) -> None:
        for name, kind in (("antialias", Antialias), ("jpeg", Quality), ("gradient", Gradient)):
            if getattr(self, name) is not None:
                check(kind, getattr(self, name), name)

    @property
    def plain(self) -> bool:
        return self == Look()

    @property
    def scale(self) -> int:
        """Coordinates in the picture times this are coordinates on the canvas."""
        return self.antialias

    @property
    def shift(self) -> int:
        """Canvas pixels every drawing is moved by: half a picture pixel when anti-aliasing, so
        edges fall inside pixels (a square on whole pixels would stay crisp) and blend."""
        return self.scale // 2

    @property
    def suffix(self) -> str:
        return ".png" if self.jpeg is None else ".jpg"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def canvas(self, width: int, height: int, background: tuple[int, int, int], rng: random.Random) -> Image.Image:
        """A blank canvas for a ``width`` x ``height`` picture: flat, or the gradient in a direction
        drawn from ``rng`` (the gradient never lightens, so a white background stays in range)."""
        w, h = width * self.scale, height * self.scale
        if not self.gradient:
            return Image.new("RGB", (w, h), background)
        angle = rng.uniform(0, 2 * math.pi)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        along = np.cos(angle) * xs / w + np.sin(angle) * ys / h  # (h,w)
        along = (along - along.min()) / max(float(np.ptp(along)), 1e-6)  # 0..1 across the picture
        shade = np.asarray(background, np.float32)[None, None] - self.gradient * along[..., None]
        return Image.fromarray(np.clip(shade, 0, 255).round().astype(np.uint8), "RGB")

    def save(self, drawing: Image.Image, stem: Path) -> Path:
        """Shrink the canvas to the picture's size and write it as ``stem`` + ``suffix``."""
        picture = drawing.reduce(self.scale) if self.scale > 1 else drawing
        path = stem.with_suffix(self.suffix)
        if self.jpeg is None:
            picture.save(path, "PNG")
        else:
            picture.save(path, "JPEG", quality=self.jpeg)
        return path
