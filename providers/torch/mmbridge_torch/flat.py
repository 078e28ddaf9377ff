"""The flat-colour object finder: objects drawn in one colour each on a smooth background.

Diagrams, synthetic scenes and simple renders draw objects this way, and pictures of them are
saved as users save pictures: anti-aliased edges, JPEG noise, a background that shades from one
side to the other, letterbox bars. The finder works on one (3,H,W) uint8 picture:

1. the background is a smooth surface, a quadratic in x and y per channel, fitted by least
   squares to the picture's border and refitted to every pixel it then explains (a flat colour
   is the surface's constant term; a gradient of 100+ levels is its slope, not an object);
2. a pixel further than the threshold from the surface, in any channel, is foreground; the
   threshold is 48 levels or six times the background's own noise, whichever is larger;
3. each connected part of the foreground is an object, unless it holds two colours of
   substance: a pixel that is the part's commonest colour, a blend of it with the background
   (an anti-aliased edge, a JPEG halo) or a shade of it (JPEG's rings), belongs to it; when one
   connected piece of what is left is a fifth of the part or more, of another colour and more
   than a rim, the part is objects that touch and is split by colour.

Nothing here is learned or reads labels; it is the same at training and at answer time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["Found", "find"]

_BACKGROUND_DIFF = 48  # a pixel further than this from the background (any channel) is foreground
_NOISE_FACTOR = 6.0  # ... or than this many times the background's own noise, where that is larger
_SAME_COLOUR = 48  # a pixel within this of an object's colour, or of a blend with the background, is its
_OTHER_COLOUR = 60  # a left-over piece this far from the object's colour (any channel) is another object
_BORDER = 2  # pixels of the border that seed the background fit


@dataclass
class Found:
    """What the finder saw in one picture."""

    masks: list[np.ndarray]  # (H,W) bool per object, largest (a detector's: surest) first
    background: float  # share of the pixels that are background
    covered: float  # share of the foreground in parts big enough to be objects
    regions: np.ndarray | None = None  # (objects, C): a learned finder's own features of each (detector.py)


@functools.lru_cache(maxsize=8)
def _design(h: int, w: int) -> np.ndarray:
    """(H*W, 6): 1, x, y, x^2, xy, y^2 of every pixel, x and y in [-1, 1] (one per size, read only)."""
    ys, xs = np.mgrid[0:h, 0:w]
    x = (xs.ravel() + 0.5) / w * 2 - 1
    y = (ys.ravel() + 0.5) / h * 2 - 1
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1).astype(np.float32)
    design.flags.writeable = False
    return design


def _fit(design: np.ndarray, pixels: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Least-squares surface through the pixels ``use`` selects: (6,3) coefficients, from the
    normal equations (a 6x6 solve; numpy's SVD-based lstsq took 5 ms a call here)."""
    rows = np.flatnonzero(use)
    if len(rows) > 4096:  # a regular subsample is as good and keeps big pictures cheap
        rows = rows[:: len(rows) // 4096]
    a = design[rows]
    return np.linalg.solve(a.T @ a + 1e-6 * np.eye(a.shape[1]), a.T @ pixels[rows])


def letterboxed(hwc: np.ndarray) -> tuple[slice, slice]:
    """The picture inside letterbox bars: rows (or columns) at the edges of one exact colour, the
    same colour on both sides. A picture with no bars is whole."""
    h, w, _ = hwc.shape

    def plain(line: np.ndarray) -> bool:
        return bool((line == line[0]).all())

    top = 0
    while top < h // 3 and plain(hwc[top]) and plain(hwc[h - 1 - top]) and (hwc[top, 0] == hwc[h - 1 - top, 0]).all():
        top += 1
    left = 0
    while (
        left < w // 3
        and plain(hwc[:, left])
        and plain(hwc[:, w - 1 - left])
        and (hwc[0, left] == hwc[0, w - 1 - left]).all()
    ):
        left += 1
    if top and left:  # a flat picture is all "bars": it has none
        return slice(0, h), slice(0, w)
    return slice(top, h - top), slice(left, w - left)


def background_surface(hwc: np.ndarray) -> tuple[np.ndarray, float]:
    """(H,W,3) float32 background and the foreground threshold (from the background's noise), for
    (H,W,3) pixels. Letterbox bars are left out of the fit (their flat colour is no floor's) and are
    background by definition."""
    h, w, _ = hwc.shape
    rows, cols = letterboxed(hwc)
    pixels = hwc.reshape(-1, 3).astype(np.float32)
    design = _design(h, w)
    inside = np.zeros((h, w), bool)
    inside[rows, cols] = True
    border = np.zeros((h, w), bool)
    b = min(_BORDER, h // 4, w // 4) or 1
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    border[r0 : r0 + b, c0:c1] = border[r1 - b : r1, c0:c1] = border[r0:r1, c0 : c0 + b] = border[
        r0:r1, c1 - b : c1
    ] = True
    inside = inside.ravel()
    use = border.ravel()
    coef = _fit(design, pixels, use)
    for _ in range(3):  # refit without what the fit does not explain: objects on the border, then all objects
        residual = np.abs(pixels - design @ coef).max(1)
        noise = 1.4826 * float(np.median(residual[use])) if use.any() else 0.0
        threshold = max(_BACKGROUND_DIFF, _NOISE_FACTOR * noise)
        again = (residual <= threshold / 2) & inside
        if again.sum() < 6 or np.array_equal(again, use):
            break
        use = again
        coef = _fit(design, pixels, use)
    fitted = design @ coef
    fitted[~inside] = pixels[~inside]  # the bars are background, exactly
    surface = fitted.reshape(h, w, 3).astype(np.float32)
    residual = np.abs(pixels - fitted).max(1)
    quiet = (residual <= _BACKGROUND_DIFF / 2) & inside
    noise = 1.4826 * float(np.median(residual[quiet])) if quiet.any() else float(np.median(residual))
    return surface, max(_BACKGROUND_DIFF, _NOISE_FACTOR * noise)


def _reference(hwc: np.ndarray, ground: np.ndarray, part: np.ndarray) -> np.ndarray:
    """A part's colour: the commonest among the half of its pixels that stand out most from the
    background (in a small JPEG object the blended rim can outnumber the core)."""
    colours = hwc[part]
    standout = np.abs(colours - ground[part]).max(1)
    core = colours[standout >= np.median(standout)]
    coarse = (core[:, 0] >> 5) << 6 | (core[:, 1] >> 5) << 3 | core[:, 2] >> 5
    values, counts = np.unique(coarse, return_counts=True)
    return np.median(core[coarse == values[counts.argmax()]], axis=0)


def _nearest_on(pixels: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n,3): the point of each segment start[i]..end[i] nearest to pixels[i]."""
    towards = end - start
    t = ((pixels - start) * towards).sum(1) / np.maximum((towards * towards).sum(1), 1.0)
    return start + np.clip(t, 0.0, 1.0)[:, None] * towards


def _blends(hwc: np.ndarray, ground: np.ndarray, part: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(H,W) bool: the pixels of ``part`` that are ``reference``, a blend of it with the background
    (an anti-aliased edge, a pale JPEG halo) or a shade of it, 60% to 140% as bright (JPEG's dark
    rings and block-edge strips on saturated colours)."""
    pixels, bg = hwc[part].astype(np.float32), ground[part]
    ref = np.broadcast_to(reference.astype(np.float32), pixels.shape)
    blend = np.abs(pixels - _nearest_on(pixels, bg, ref)).max(1)
    shade = np.abs(pixels - _nearest_on(pixels, 0.6 * ref, 1.4 * ref)).max(1)  # not clipped: a hue stays
    out = np.zeros_like(part)
    out[part] = np.minimum(blend, shade) <= _SAME_COLOUR
    return out


def _split(part: np.ndarray, hwc: np.ndarray, ground: np.ndarray, min_area: int, depth: int) -> list[np.ndarray]:
    """One connected part as objects: itself, or (objects that touch) split by colour."""
    if depth == 0:
        return [part]
    reference = _reference(hwc, ground, part)
    near = _blends(hwc, ground, part, reference)
    rest, n = ndimage.label(part & ~near)
    sizes = np.bincount(rest.ravel(), minlength=n + 1)[1:]
    # what is left over is another object only where one piece of it is a fifth of the part, of
    # another colour, and more than a rim: JPEG leaves a few small pieces at a small object's
    # corners, a strip across a block boundary that is off by ~50 levels in one channel, or a dark
    # ring around a saturated object (pure blue: ~80 levels off)
    inside = ndimage.binary_erosion(part, iterations=2)
    big = [j + 1 for j in np.flatnonzero(sizes >= max(min_area, 0.2 * part.sum()))]
    if not any(
        np.abs(np.median(hwc[rest == j], axis=0) - reference).max() > _OTHER_COLOUR
        and (inside & (rest == j)).sum() >= min_area
        for j in big
    ):
        return [part]
    pieces, n = ndimage.label(near)
    out = [pieces == j for j in np.flatnonzero(np.bincount(pieces.ravel(), minlength=n + 1)[1:] >= min_area) + 1]
    for j in np.flatnonzero(sizes >= min_area) + 1:
        out += _split(rest == j, hwc, ground, min_area, depth - 1)
    return out


def _rejoin(masks: list[np.ndarray], hwc: np.ndarray, ground: np.ndarray) -> list[np.ndarray]:
    """Masks (largest first) with each detached rim given back to its object: JPEG rings a
    saturated object with a pale halo (white + 70 levels off in one channel) that can come apart
    from it. A piece within 2 pixels of a larger one, under half its size, and (80% of it) a blend
    of that one's colour with the background, is part of it."""
    out = list(masks)
    for i in range(len(out) - 1, 0, -1):
        ys, xs = np.nonzero(out[i])
        rows, cols = slice(max(ys.min() - 2, 0), ys.max() + 3), slice(max(xs.min() - 2, 0), xs.max() + 3)
        near = ndimage.binary_dilation(out[i][rows, cols], iterations=2)  # within 2 pixels, in its box
        for j in range(i):
            if (near & out[j][rows, cols]).any() and out[i].sum() < 0.5 * out[j].sum():
                blends = _blends(hwc, ground, out[i], _reference(hwc, ground, out[j]))
                if blends.sum() >= 0.8 * out[i].sum():
                    out[j] = out[j] | out.pop(i)
                    break
    return out


def find(image: np.ndarray, limit: int) -> Found:
    """The objects of one (3,H,W) uint8 picture (up to 4 x ``limit`` parts are looked at)."""
    h, w = image.shape[1:]
    hwc = image.transpose(1, 2, 0).astype(np.int32)
    ground, threshold = background_surface(hwc)
    foreground = np.abs(hwc - ground).max(-1) > threshold
    min_area = max(4, h * w // 1000)  # specks are not objects
    labels, n = ndimage.label(foreground)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    boxes = ndimage.find_objects(labels)
    masks: list[np.ndarray] = []
    kept = 0
    for i in np.argsort(-areas[1:])[: 4 * limit] + 1:
        if areas[i] < min_area:
            break
        kept += int(areas[i])
        # each part is looked at in its own box (3 pixels more a side): whole-picture masks per part
        # made the finder ~5x slower
        rows, cols = (slice(max(b.start - 3, 0), b.stop + 3) for b in boxes[i - 1])
        for piece in _split(labels[rows, cols] == i, hwc[rows, cols], ground[rows, cols], min_area, depth=limit):
            whole = np.zeros((h, w), bool)
            whole[rows, cols] = piece
            masks.append(whole)
    masks = _rejoin(sorted(masks, key=lambda m: -int(m.sum())), hwc, ground)
    fg = int(foreground.sum())
    return Found(masks, 1 - fg / (h * w), kept / fg if fg else 1.0)
