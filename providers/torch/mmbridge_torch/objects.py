"""Object tokens from the pixels alone: the objects a finder sees in an image, each described by
what a person would say about it (colour, where, how big, its outline).

Finders (pixels in; masks, and how the picture looked to them, out):

- ``flat`` (flat.py): objects of one colour each on a smooth background: diagrams, synthetic
  scenes, saved anti-aliased, as JPEG, on a gradient; objects that touch are split by colour;
- ``shaded`` (shaded.py): shaded objects on a textured floor with shadows: renders;
- ``detector`` (detector.py): a torchvision detector's boxes, for photos, each with the detector's
  own region features after the description below (a learned finder: ``Finder``).

``choose_finder`` picks one for a training set by a measured rule: the flat finder when it and
the shaded one count the same objects in 95% of the sampled pictures (the simpler model explains
them as well; it also splits touching objects), else the shaded one. Renders made here: they
agree on 37%; every flat family here: 98% or more.

Each object becomes a fixed-size vector:

    RGB of its core (3) | RGB spread of its core (3) | centre x, y in [-1, 1] (2) | box width,
    height (2) | sqrt(area) (1) | fill = area / box area (1) | second moments (3) | its mask on
    an 8x8 grid (64)

The core is the half of its pixels nearest its median colour: an anti-aliased rim blends the
object's colour with the background's and would pull a mean towards the background.

Nothing here is learned or reads labels: it is image processing, the same at training and at
inference. ``segments_like`` says whether one picture looks like such a scene (the training
pictures must, 95% of them; at answer time guard.py checks each); photos do not (no smooth
background, hundreds of regions), and for them the model keeps its grid of CNN or backbone
features (``ModelConfig.image_tokens``), or, given a detector's weights, its objects.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from . import flat, shaded
from .flat import Found

FINDERS = {"flat": flat.find, "shaded": shaded.find}

__all__ = [
    "FEATURES",
    "FINDERS",
    "Finder",
    "XY",
    "choose_finder",
    "describe",
    "looks_segmentable",
    "pictures_differ",
    "present",
    "segment",
    "segment_batch",
    "segment_found",
    "segmentable_share",
    "segments_like",
    "width",
]

MASK = 8  # the outline is resampled to MASK x MASK
FEATURES = 15 + MASK * MASK
XY = slice(6, 8)  # where the centre sits in a feature vector


def _describe(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    area = len(ys)
    cy, cx = ys.mean(), xs.mean()
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb = image[:, ys, xs].T / 255.0  # (n,3)
    # the core: the half of its pixels nearest its median colour (the rim blends into the background)
    spread = np.abs(rgb - np.median(rgb, axis=0)).max(1)
    core = rgb[spread <= np.median(spread)] if area >= 4 else rgb
    moments = [((xs - cx) ** 2).mean(), ((ys - cy) ** 2).mean(), ((xs - cx) * (ys - cy)).mean()]
    outline = torch.from_numpy(mask[y0:y1, x0:x1].astype(np.float32))[None, None]
    outline = F.interpolate(outline, size=(MASK, MASK), mode="area").flatten().numpy()
    side = max(h, w)
    head = [
        *core.mean(0),
        *core.std(0),
        (cx + 0.5) / w * 2 - 1,
        (cy + 0.5) / h * 2 - 1,
        (x1 - x0) / side,
        (y1 - y0) / side,
        np.sqrt(area) / side,
        area / ((x1 - x0) * (y1 - y0)),
        *(m / area for m in moments),
    ]
    return np.concatenate([np.asarray(head, dtype=np.float32), outline])


class Finder(Protocol):
    """A learned finder (detector.RegionDetector): a batch of pictures in, what it found in each out."""

    width: int  # the features it adds to each object's description

    def find_batch(self, images: torch.Tensor, limit: int) -> list[Found]: ...


def width(finder: str | Finder) -> int:
    """How wide an object's description is for ``finder``: FEATURES, and a learned finder's own."""
    return FEATURES + (0 if isinstance(finder, str) else finder.width)


def describe(image: np.ndarray, found: Found, limit: int, size: int = FEATURES) -> np.ndarray:
    """(limit, size) float32: the first ``limit`` objects ``found`` in (3,H,W) ``image`` (with a
    learned finder's features after FEATURES), then zero rows."""
    out = np.zeros((limit, size), np.float32)
    for i, mask in enumerate(found.masks[:limit]):
        out[i, :FEATURES] = _describe(image, mask)
        if found.regions is not None:
            out[i, FEATURES:] = found.regions[i]
    return out


def segment(image: np.ndarray, limit: int, finder: str = "flat") -> np.ndarray:
    """(3,S,S) uint8 -> (limit, FEATURES) float32: the ``limit`` largest objects, then zero rows."""
    return describe(image, FINDERS[finder](image, limit), limit)


def segment_found(images: torch.Tensor, limit: int, finder: str | Finder = "flat") -> tuple[torch.Tensor, list[Found]]:
    """(B,3,S,S) uint8 -> (B,limit,width(finder)) float32 on the images' device, and what the finder
    saw in each. ``finder``: a name in FINDERS, or a learned one."""
    pixels = images.detach().cpu()
    if isinstance(finder, str):
        found = [FINDERS[finder](image, limit) for image in pixels.numpy()]
    else:
        found = finder.find_batch(pixels, limit)
    out = np.zeros((len(pixels), limit, width(finder)), np.float32)
    for i, (image, seen) in enumerate(zip(pixels.numpy(), found, strict=True)):
        out[i] = describe(image, seen, limit, out.shape[-1])
    return torch.from_numpy(out).to(images.device), found


def segment_batch(images: torch.Tensor, limit: int, finder: str | Finder = "flat") -> torch.Tensor:
    """(B,3,S,S) uint8 -> (B,limit,width(finder)) float32 on the images' device."""
    return segment_found(images, limit, finder)[0]


def present(regions: torch.Tensor) -> torch.Tensor:
    """(...,K) bool: which slots of (...,K,FEATURES) descriptions hold an object. An empty slot is
    all zeros; an object never is (its size is not zero), black ones included."""
    return regions.abs().sum(-1) > 0


def segments_like(found: Found, limit: int) -> bool:
    """Does one picture look like a scene of objects? A background over a third of it, between
    one and ``limit`` objects, and objects that cover 90% of what is not background (a photo's
    foreground is mostly specks and fragments)."""
    return found.background >= 1 / 3 and 0 < len(found.masks) <= limit and found.covered >= 0.9


def _sampled(images: torch.Tensor, sample: int) -> np.ndarray:
    step = max(1, len(images) // sample)
    return images[::step][:sample].numpy()


def segmentable_share(images: torch.Tensor, limit: int, sample: int = 200, finder: str = "flat") -> float:
    """The share of (up to ``sample`` of) these images (N,3,S,S) uint8 that look like scenes of
    objects to ``finder`` (``segments_like``); 0 for none."""
    picked = _sampled(images, sample)
    found = [segments_like(FINDERS[finder](image, limit), limit) for image in picked]
    return sum(found) / len(found) if found else 0.0


def looks_segmentable(images: torch.Tensor, limit: int, sample: int = 200) -> bool:
    """Do these images look like flat-colour scenes (the flat finder)? Yes when 95% of them do."""
    return segmentable_share(images, limit, sample) >= 0.95


def choose_finder(images: torch.Tensor, limit: int, sample: int = 200) -> tuple[str, float, float]:
    """The finder for these training images (N,3,S,S) uint8; the share of (up to ``sample`` of)
    them on which the flat and shaded finders count the same objects (flat from 95%); and the
    share that look like scenes of objects to the finder chosen (``segments_like``). Each finder
    runs once on each sampled picture."""
    picked = _sampled(images, sample)
    seen = {name: [FINDERS[name](image, limit) for image in picked] for name in ("flat", "shaded")}
    same = [len(a.masks) == len(b.masks) for a, b in zip(seen["flat"], seen["shaded"], strict=True)]
    agree = sum(same) / len(same) if same else 0.0
    finder = "flat" if agree >= 0.95 else "shaded"
    share = sum(segments_like(found, limit) for found in seen[finder]) / len(picked) if len(picked) else 0.0
    return finder, agree, share


def pictures_differ(regions: torch.Tensor, sample: int = 2000) -> bool:
    """Do these scenes (their regions, (N,K,FEATURES) from segment_batch) differ in the colours they
    hold? The reader's grounding contrast (reader.py) needs them to: a question's words must pick
    its own picture out of a batch.

    Where (nearly) every picture holds the same set of colours, as in Sort-of-CLEVR's six, the
    contrast cannot be won; measured there, it drove the answers to chance (46% after 10 minutes,
    against 75% after 3 without it). No when the commonest set of region colours (each channel in
    four steps) is that of half of (up to ``sample`` of) the pictures or more.
    """
    step = max(1, len(regions) // sample)
    picked = regions[::step][:sample].numpy()
    counts: dict[frozenset[tuple[int, ...]], int] = {}
    for scene, found in zip(picked, present(torch.from_numpy(picked)).numpy(), strict=True):
        key = frozenset(tuple(int(c * 3.999) for c in rgb) for rgb in scene[found, :3])
        counts[key] = counts.get(key, 0) + 1
    return len(picked) > 0 and max(counts.values()) < 0.5 * len(picked)
