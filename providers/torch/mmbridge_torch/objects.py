"""Object tokens from the pixels alone: the flat-colour regions of an image, each described by
what a person would say about it (colour, where, how big, its outline).

Synthetic scenes, diagrams and renders draw objects as regions of one colour on a flat
background. For such images this module finds every region (connected pixels of one quantized
colour that differ from the background, the most common colour along the border) and turns it
into a fixed-size vector:

    mean RGB (3) | RGB spread (3) | centre x, y in [-1, 1] (2) | box width, height (2)
    | sqrt(area) (1) | fill = area / box area (1) | second moments (3) | its mask on an 8x8 grid (64)

Nothing here is learned or reads labels: it is image processing (scipy.ndimage), the same at
training and at inference. ``looks_segmentable`` decides whether a dataset's images are of this
kind; photos are not (no flat background, thousands of regions), and for them the model keeps its
grid of CNN or backbone features (``ModelConfig.image_tokens``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

__all__ = ["FEATURES", "XY", "looks_segmentable", "segment", "segment_batch"]

MASK = 8  # the outline is resampled to MASK x MASK
FEATURES = 15 + MASK * MASK
XY = slice(6, 8)  # where the centre sits in a feature vector
_BACKGROUND_DIFF = 24  # a pixel further than this from the background colour (any channel) is foreground


def _regions(image: np.ndarray, limit: int) -> tuple[list[np.ndarray], float, float]:
    """The regions of one (3,S,S) uint8 image, largest first: their masks, the background's share
    of the pixels, and the share of foreground pixels the regions cover."""
    s = image.shape[1]
    hwc = image.transpose(1, 2, 0).astype(np.int32)
    packed = (hwc[..., 0] << 16) | (hwc[..., 1] << 8) | hwc[..., 2]
    border = np.concatenate([packed[0], packed[-1], packed[:, 0], packed[:, -1]])
    values, counts = np.unique(border, return_counts=True)
    bg = values[counts.argmax()]
    background = np.array([(bg >> 16) & 255, (bg >> 8) & 255, bg & 255])
    foreground = np.abs(hwc - background).max(-1) > _BACKGROUND_DIFF
    quantized = hwc >> 4
    key = (quantized[..., 0] << 8) | (quantized[..., 1] << 4) | quantized[..., 2]
    keys, key_counts = np.unique(key[foreground], return_counts=True)
    min_area = max(4, s * s // 1000)  # anti-aliased edges and specks are not objects
    regions: list[tuple[int, np.ndarray]] = []
    for k in keys[np.argsort(-key_counts)][: 4 * limit]:
        labels, n = ndimage.label(foreground & (key == k))
        areas = np.bincount(labels.ravel())[1:]
        regions += [(int(areas[i]), labels == i + 1) for i in np.nonzero(areas >= min_area)[0]]
    regions.sort(key=lambda r: -r[0])
    fg = int(foreground.sum())
    covered = sum(a for a, _ in regions) / fg if fg else 1.0
    return [m for _, m in regions], 1 - fg / (s * s), covered


def _describe(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    s = mask.shape[0]
    ys, xs = np.nonzero(mask)
    area = len(ys)
    cy, cx = ys.mean(), xs.mean()
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb = image[:, ys, xs].T / 255.0
    moments = [((xs - cx) ** 2).mean(), ((ys - cy) ** 2).mean(), ((xs - cx) * (ys - cy)).mean()]
    outline = torch.from_numpy(mask[y0:y1, x0:x1].astype(np.float32))[None, None]
    outline = F.interpolate(outline, size=(MASK, MASK), mode="area").flatten().numpy()
    head = [
        *rgb.mean(0),
        *rgb.std(0),
        (cx + 0.5) / s * 2 - 1,
        (cy + 0.5) / s * 2 - 1,
        (x1 - x0) / s,
        (y1 - y0) / s,
        np.sqrt(area) / s,
        area / ((x1 - x0) * (y1 - y0)),
        *(m / area for m in moments),
    ]
    return np.concatenate([np.asarray(head, dtype=np.float32), outline])


def segment(image: np.ndarray, limit: int) -> np.ndarray:
    """(3,S,S) uint8 -> (limit, FEATURES) float32: the ``limit`` largest regions, then zero rows."""
    out = np.zeros((limit, FEATURES), np.float32)
    for i, mask in enumerate(_regions(image, limit)[0][:limit]):
        out[i] = _describe(image, mask)
    return out


def segment_batch(images: torch.Tensor, limit: int) -> torch.Tensor:
    """(B,3,S,S) uint8 -> (B,limit,FEATURES) float32 on the images' device."""
    pixels = images.detach().cpu().numpy()
    features = np.stack([segment(im, limit) for im in pixels]) if len(pixels) else np.zeros((0, limit, FEATURES))
    return torch.from_numpy(features.astype(np.float32)).to(images.device)


def looks_segmentable(images: torch.Tensor, limit: int, sample: int = 200) -> bool:
    """Do these images (N,3,S,S) uint8 look like flat-colour scenes? Yes when at least 95% of
    (up to ``sample`` of) them have a background over a third of the picture, at most ``limit``
    regions, and regions that cover 90% of what is not background."""
    if len(images) == 0:
        return False
    step = max(1, len(images) // sample)
    ok = 0
    for image in images[::step][:sample].numpy():
        regions, background, covered = _regions(image, limit)
        ok += background >= 1 / 3 and 0 < len(regions) <= limit and covered >= 0.9
    return ok >= 0.95 * min(len(images[::step]), sample)
