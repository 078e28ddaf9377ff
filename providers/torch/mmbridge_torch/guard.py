"""The guard at answer time: does a picture look like the pictures an object-token checkpoint
learnt from? One that does not is still answered, but with half the confidence and a warning in
the response, so a cascade escalates it and a reader of the results sees why; it is never
answered silently from objects that are not there (a photo's fragments, say).

A picture looks like the training pictures when it segments like them: it passes
``objects.segments_like`` (a background, at most ``max_objects`` objects that cover what is not
background) and holds no more objects than the most any training picture held. Training
records that number in the checkpoint (``Profile``). A photo has no background to measure: for
the detector finder, a picture in which it finds no object is the one flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from mmbridge.types import Response

from .flat import Found
from .objects import Finder, present, segment_found, segments_like

__all__ = ["DOUBT", "Profile", "doubted", "segment_checked"]

DOUBT = 0.5  # a flagged answer's confidence is multiplied by this


@dataclass(frozen=True)
class Profile:
    """What the training pictures looked like to the object finder."""

    finder: str  # which finder found the objects ("flat", "shaded", "detector")
    most_objects: int  # the most objects any training picture held

    def to_info(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_info(cls, info: dict[str, Any], finder: str, max_objects: int) -> Profile:
        """The checkpoint's profile; one written before profiles existed allows ``max_objects``."""
        entry = info.get("objects") if isinstance(info.get("objects"), dict) else {}
        most = entry.get("most_objects")
        return cls(finder, int(most) if isinstance(most, int) else max_objects)

    @classmethod
    def of(cls, finder: str, regions: torch.Tensor) -> Profile:
        """The profile of training pictures' descriptions (N,K,FEATURES), found by ``finder``."""
        counts = present(regions).sum(-1)
        return cls(finder, int(counts.max()) if len(counts) else 0)


def segment_checked(
    images: torch.Tensor, finder: str | Finder, limit: int, profile: Profile
) -> tuple[torch.Tensor, list[str | None]]:
    """(B,3,S,S) uint8 -> their object descriptions (B,limit,F) as ``finder`` sees them and, per
    picture, a warning (None where it looks like the training pictures)."""
    features, found = segment_found(images, limit, finder)
    return features, [_warning(seen, limit, profile) for seen in found]


def doubted(response: Response, warning: str | None) -> Response:
    """``response`` as it is, or (with a warning) at ``DOUBT`` times its confidence, warning attached."""
    if warning is None:
        return response
    confidence = None if response.confidence is None else response.confidence * DOUBT
    return response.model_copy(update={"confidence": confidence, "warning": warning})


def _warning(found: Found, limit: int, profile: Profile) -> str | None:
    count = len(found.masks)
    if profile.finder == "detector":  # a photo has no background to measure: what counts is that it saw something
        if count == 0:
            return "the detector found no object in the picture above its threshold: the answer rests on none"
    elif not segments_like(found, limit):
        return (
            f"the picture does not segment like the scenes this model learnt from ({profile.finder} finder: "
            f"{count} regions, {found.background:.0%} background, {found.covered:.0%} of the rest in objects): "
            "its answer may rest on objects that are not there"
        )
    if count > profile.most_objects:
        return f"the picture holds {count} objects, more than any training picture ({profile.most_objects})"
    return None
