"""The shaded-object finder: objects standing on a floor and lit, as renders and simple photos of
tabletop scenes show them: no flat colour anywhere, a floor with texture and a lighting gradient,
a shadow beside every object, highlights near white.

1. the floor is the smooth surface flat.py fits to the picture (its texture is the noise);
2. a shadow is the floor's own colour, darker: 30% to 92% as bright with the same hue. It is
   taken out before objects are found, so an object and its shadow are not one object and a
   shadow is never an object of its own;
3. what differs from the floor by more than the threshold and is no shadow is an object, holes
   (a highlight) filled and a pixel's worth of fringe opened away; connected parts are objects,
   never split by colour (a shaded object holds every brightness of its colour).

A darker copy of the floor that touches no object is kept as an object: a grey object on a
white or grey background stands alone, a shadow never does.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .flat import Found, background_surface

__all__ = ["find"]

_SHADOW_TOLERANCE = 24  # a shadow pixel is within this (any channel) of the floor's colour, darkened
_DARKEST, _LIGHTEST = 0.3, 0.92  # how much of the floor's brightness a shadow keeps


def _layers(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H,W) bool foreground that is no shadow, and (H,W) bool shadow."""
    hwc = image.transpose(1, 2, 0).astype(np.float32)
    ground, threshold = background_surface(hwc.astype(np.int32))
    differs = np.abs(hwc - ground).max(-1) > threshold
    beta = (hwc * ground).sum(-1) / np.maximum((ground * ground).sum(-1), 1.0)
    darker = np.abs(hwc - beta[..., None] * ground).max(-1) <= _SHADOW_TOLERANCE
    shadow = differs & darker & (beta >= _DARKEST) & (beta <= _LIGHTEST)
    return differs & ~shadow, shadow


def find(image: np.ndarray, limit: int) -> Found:
    """The objects of one (3,H,W) uint8 picture (up to 4 x ``limit`` parts are looked at)."""
    h, w = image.shape[1:]
    objects, shadow = _layers(image)
    objects = ndimage.binary_fill_holes(ndimage.binary_opening(objects))
    min_area = max(4, h * w // 1000)
    # a darker copy of the floor that is near no object, and of an object's size, is no shadow but
    # a grey object on its own; pieces of shadow 4 pixels apart count as one (floor texture breaks
    # a soft shadow into pieces)
    pieces, n = ndimage.label(ndimage.binary_dilation(shadow, iterations=2))
    pieces[~shadow] = 0
    near = np.unique(pieces[ndimage.binary_dilation(objects, iterations=2) & shadow])
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    alone = [j for j in range(1, n + 1) if j not in set(near.tolist()) and sizes[j] >= 2 * min_area]
    grey = np.isin(pieces, alone)
    objects |= grey
    shadow &= ~grey
    labels, n = ndimage.label(objects)
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    masks = [labels == i for i in np.argsort(-areas[1:])[: 4 * limit] + 1 if areas[i] >= min_area]
    fg = int(objects.sum())
    kept = sum(int(m.sum()) for m in masks)
    return Found(masks, 1 - (fg + int(shadow.sum())) / (h * w), kept / fg if fg else 1.0)
