"""``--image-tokens auto``: grid or object tokens for a dataset, and which finder, chosen by a
measured rule on a sample of its training pictures, printed and kept in the checkpoint's info."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from mmbridge.data.sample import Sample
from mmbridge.errors import DatasetError, ImageError
from mmbridge.image import Image

from .config import ModelConfig
from .objects import choose_finder
from .options import TrainOptions
from .tensors import letterbox

__all__ = ["TokenChoice", "choose_image_tokens", "why_not_auto"]


class TokenChoice(NamedTuple):
    """What ``--image-tokens auto`` chose: the tokens, the input side, the share of the sampled
    training pictures that segment into objects (objects from 95%), the finder (objects.choose_finder)
    and the share of pictures on which the flat and shaded finders agree (flat from 95%)."""

    kind: str
    size: int
    share: float
    finder: str
    agree: float

    def describe(self) -> str:
        if self.finder == "detector":
            return (
                f"objects, detector finder ({self.share:.0%} of sampled training pictures segment into flat or shaded"
                " objects, those from 95%; below, the detector's objects, as --detector-weights is given)"
            )
        return (
            f"{self.kind} ({self.share:.0%} of sampled training pictures segment into objects for the {self.finder}"
            f" finder, objects from 95%; the flat and shaded finders agree on {self.agree:.0%}, flat from 95%)"
        )


def choose_image_tokens(samples: list[Sample], cfg: ModelConfig, keep_size: bool, sample: int = 200) -> TokenChoice:
    """``--image-tokens auto``: "objects" when 95% of the training images segment into objects
    (objects.segments_like) for the finder objects.choose_finder picks, else "grid"; and the input
    side. Unless ``keep_size`` (--image-size given), pictures that share one size whose longer side
    is 16 to 128 keep that side: resizing blurs the edges their objects are found by (Sort-of-CLEVR's
    75-pixel pictures, resized to 64, looked like photos and trained on the grid: 47% after 2.5
    minutes, where at their own size, 96% after 4); one that is not square is letterboxed to it."""
    seen: dict[str, tuple[tuple[int, int], torch.Tensor | None, torch.Tensor]] = {}
    for s in samples:
        if len(seen) >= sample:
            break
        if str(s.image) not in seen:
            try:
                pil = Image(s.image).pil
            except ImageError as exc:
                raise DatasetError(f"sample {s.id}: {exc}") from None
            side = max(pil.size)
            seen[str(s.image)] = (
                pil.size,
                letterbox(pil, side) if 16 <= side <= 128 else None,
                letterbox(pil, cfg.image_size),
            )
    sizes = {size for size, _, _ in seen.values()}
    side, pictures = cfg.image_size, [resized for _, _, resized in seen.values()]
    if not keep_size and len(sizes) == 1 and all(own is not None for _, own, _ in seen.values()):
        side, pictures = max(sizes.pop()), [own for _, own, _ in seen.values()]
    if not pictures:
        return TokenChoice("grid", cfg.image_size, 0.0, "flat", 0.0)
    stacked = torch.stack(pictures)
    finder, agree, share = choose_finder(stacked, cfg.max_objects)
    if share >= 0.95:
        return TokenChoice("objects", side, share, finder, agree)
    return TokenChoice("grid", cfg.image_size, share, finder, agree)


def why_not_auto(options: TrainOptions, names: Any) -> str:
    """Why --image-tokens auto did not choose, as training prints it."""
    if "image_tokens" in options.model:
        return "as asked"
    if options.model.get("backbone", "cnn") != "cnn":
        return "the backbone's"
    return "the samples carry scenes, which the grid learns from" if names else "resumed"
