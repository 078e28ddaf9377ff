"""Photo-like scenes drawn with numpy: shaded spheres, cubes and cylinders standing on a textured
floor, each casting a soft shadow, under a light whose direction and strength change per scene.

Not a ray tracer: a camera looking down at the floor, objects further back drawn higher and
smaller, each shape shaded by the angle between its surface and the light (ambient + Lambert +
a Phong highlight), drawn back to front, at three times the size and shrunk (anti-aliased).
What matters for the object finder is what a render has that a diagram has not: no flat colour
anywhere, a floor with texture and a lighting gradient, shadows darker than the floor, and
highlights near white.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

__all__ = ["COLORS", "SHAPES", "Thing", "draw_scene", "place"]

#: CLEVR's saturated colours (its gray and brown left out: a gray object on a gray floor is a shadow)
COLORS = {
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 135, 40),
    "yellow": (245, 228, 51),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
}
SHAPES = ("sphere", "cube", "cylinder")
_SCALE = 3  # drawn this many times larger, then shrunk


@dataclass(frozen=True)
class Thing:
    """One object: colour, shape, and where it stands on the floor in picture pixels (u across,
    v down: v is also depth, nearer objects lower) with its radius in pixels."""

    color: str
    shape: str
    u: float
    v: float
    radius: float

    @property
    def centre(self) -> tuple[float, float]:
        """Where the object's middle appears in the picture (it stands on the floor at (u, v))."""
        return self.u, self.v - self.radius


def place(rng: random.Random, width: int, height: int, count: int) -> list[Thing]:
    """``count`` objects of distinct colours, apart from each other and inside the picture."""
    for _ in range(100):  # a crowded draw is started again
        things: list[Thing] = []
        for color in rng.sample(sorted(COLORS), count):
            shape = rng.choice(SHAPES)
            for _ in range(100):
                depth = rng.uniform(0, 1)  # 0 far, 1 near
                radius = (0.055 + 0.04 * depth) * width
                v = height * (0.3 + 0.6 * depth)
                u = rng.uniform(radius * 1.6, width - radius * 1.6)
                thing = Thing(color, shape, u, v, radius)
                if all(math.dist(thing.centre, o.centre) > 2.3 * max(thing.radius, o.radius) for o in things):
                    things.append(thing)
                    break
        if len(things) == count:
            return things
    raise ValueError(f"{count} objects do not fit apart in {width}x{height} pictures; use larger pictures")


def _floor(rng: random.Random, w: int, h: int) -> np.ndarray:
    """(h,w,3) float: a grey floor lit more on one side, with a fine texture."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    light = np.cos(angle) * xs / w + np.sin(angle) * ys / h
    base = rng.uniform(105, 145) + rng.uniform(20, 45) * (light - light.mean())
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0, 1, (h // 4 + 1, w // 4 + 1))
    texture = np.kron(noise, np.ones((4, 4)))[:h, :w] * rng.uniform(3, 7)  # blotches of 4/3 pixels
    tint = np.array([1.0, rng.uniform(0.97, 1.02), rng.uniform(0.94, 1.03)], np.float32)
    return (base + texture)[..., None] * tint


def _shade(normal: np.ndarray, light: np.ndarray, colour: np.ndarray, shine: float) -> np.ndarray:
    """(n,3) surface normals -> (n,3) colours: ambient + Lambert + a highlight towards the viewer."""
    lambert = np.clip(normal @ light, 0, None)[:, None]
    reflect = 2 * (normal @ light)[:, None] * normal - light
    highlight = np.clip(reflect[:, 2], 0, None)[:, None] ** 24 * shine
    return colour * (0.32 + 0.68 * lambert) + 255 * highlight


def _disk(ys: np.ndarray, xs: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1


def _draw(canvas: np.ndarray, thing: Thing, light: np.ndarray, colour: np.ndarray) -> None:
    h, w, _ = canvas.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r, u, v = thing.radius * _SCALE, thing.u * _SCALE, thing.v * _SCALE
    if thing.shape == "sphere":
        inside = _disk(ys, xs, v - r, u, r, r)
        dx, dy = (xs[inside] - u) / r, (ys[inside] - (v - r)) / r
        normal = np.stack([dx, -dy, np.sqrt(np.clip(1 - dx * dx - dy * dy, 0, 1))], 1)
        canvas[inside] = _shade(normal, light, colour, 0.55)
    elif thing.shape == "cylinder":
        rx, ry, top = 0.85 * r, 0.3 * r, v - 1.7 * r
        body = (np.abs(xs - u) <= rx) & (ys >= top) & (ys <= v - ry)
        body |= _disk(ys, xs, v - ry, u, ry, rx)
        dx = np.clip((xs[body] - u) / rx, -1, 1)
        normal = np.stack([dx, np.zeros_like(dx), np.sqrt(1 - dx * dx)], 1)
        canvas[body] = _shade(normal, light, colour, 0.35)
        cap = _disk(ys, xs, top, u, ry, rx)
        canvas[cap] = _shade(np.array([[0.0, 1.0, 0.25]]) / 1.03, light, colour, 0.0)
    else:  # a cube seen from the front and a little above: its front face and its top
        s, depth = 0.8 * r, 0.45 * r
        front = (np.abs(xs - u) <= s) & (ys >= v - 2 * s) & (ys <= v)
        above = (ys >= v - 2 * s - depth) & (ys < v - 2 * s)
        slant = (xs - u + s - (v - 2 * s - ys) * 0.6 >= 0) & (xs - u - s - (v - 2 * s - ys) * 0.6 <= 0)
        canvas[front] = _shade(np.array([[0.0, 0.0, 1.0]]), light, colour, 0.0)
        canvas[above & slant] = _shade(np.array([[0.0, 0.9, 0.44]]), light, colour, 0.0)


def draw_scene(things: list[Thing], width: int, height: int, rng: random.Random) -> np.ndarray:
    """(height,width,3) uint8: the floor, the shadows, then the objects back to front."""
    w, h = width * _SCALE, height * _SCALE
    canvas = _floor(rng, w, h)
    azimuth = rng.uniform(-0.9, 0.9)  # where the light comes from, left to right
    light = np.array([math.sin(azimuth), rng.uniform(0.5, 0.9), rng.uniform(0.6, 1.0)], np.float32)
    light /= np.linalg.norm(light)
    strength = rng.uniform(0.85, 1.1)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for t in things:  # shadows fall away from the light, on the floor behind and beside
        r = t.radius * _SCALE
        shadow = _disk(ys, xs, t.v * _SCALE - 0.35 * r, t.u * _SCALE - light[0] * 1.4 * r, 0.5 * r, 1.35 * r)
        canvas[shadow] *= rng.uniform(0.5, 0.65)
    for t in sorted(things, key=lambda t: t.v):
        colour = np.asarray(COLORS[t.color], np.float32) * strength * rng.uniform(0.95, 1.05)
        _draw(canvas, t, light, colour)
    picture = np.clip(canvas, 0, 255).reshape(height, _SCALE, width, _SCALE, 3).mean((1, 3))
    return picture.round().astype(np.uint8)
