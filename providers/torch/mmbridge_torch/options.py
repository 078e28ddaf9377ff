"""What ``mmbridge train`` is asked to do: ``TrainOptions``, read by training's steps (train.py,
token_choice.py, loop.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["TrainOptions"]


@dataclass
class TrainOptions:
    data: str
    out: Path
    val: str | None = None
    epochs: int = 30
    max_minutes: float | None = None
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    #: images per step (all their questions come along); None: by the model (see loop.Run)
    batch_images: int | None = None
    #: with object tokens and the grounding contrast: the share of training (by steps or time,
    #: whichever is further) that trains the contrast alone, so the words find their objects before
    #: anything reads them (in crowded scenes, validation vqa 80% after 6 minutes; 41-50% without)
    contrast_first: float = 0.125
    lr: float = 1e-3
    weight_decay: float = 0.01
    caption_weight: float = 0.5
    validate_every_s: float = 60.0
    cache_dir: Path = Path(".mmbridge/cache")
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    #: learn from meta.scene when every training sample carries one (see scene.py); False: answers only
    scene: bool = True
    #: the most frequent answers kept as classes (VQA v2's usual 3,129); the rest are not trained on
    max_answers: int = 3129
    #: with model={"backbone": ...}: "DEFAULT" (torchvision's, downloaded here) or a state-dict file
    backbone_weights: str | None = None
    #: the detector finder's weights (detector.py): "DEFAULT" or a state-dict file; with them,
    #: --image-tokens auto may choose the detector for pictures that do not segment
    detector_weights: str | None = None
