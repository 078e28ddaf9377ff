"""The detector finder (``--image-tokens detector``): a torchvision detector's regions as object
tokens. Nothing is downloaded: the test writes the detector's weights file itself (random weights,
a threshold of 0 so that they find regions at all)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.detector import REGION, RegionDetector
from mmbridge_torch.guard import Profile, segment_checked
from mmbridge_torch.objects import FEATURES, XY, present, segment_batch
from mmbridge_torch.train import TrainOptions, train
from PIL import Image as PILImage

from mmbridge import Client, ConfigError
from mmbridge.config import CacheConfig, Config
from mmbridge.data.jsonl import write_jsonl
from mmbridge.data.sample import Sample

from .conftest import TINY, stored_bytes

NAME = "fasterrcnn_mobilenet_v3_large_fpn"
SMALL = {"detector_size": 96, "detector_threshold": 0.0, "max_objects": 6}  # random weights score ~1/91


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state-dict file of the whole torchvision detector, as a user would save one."""
    from torchvision import models

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("detector") / "detector.pt"
    torch.save(models.get_model(NAME, weights=None, weights_backbone=None).state_dict(), path)
    return path


def _photos(folder: Path, n: int) -> list[Sample]:
    """Pictures with no flat background (smoothed noise: no finder segments them) and a question each."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        path = folder / f"{i}.png"
        PILImage.fromarray(pixels).resize((64, 48), PILImage.BILINEAR).save(path)
        answer = "yes" if i % 2 else "no"
        rows.append(Sample(id=str(i), task="vqa", image=str(path), question="Is it bright?", answers=[answer]))
    return rows


def test_the_detector_finds_regions_with_their_features(weights: Path) -> None:
    detector = RegionDetector(NAME, size=96, threshold=0.0)
    detector.load_weights(str(weights))
    pictures = torch.randint(0, 256, (3, 3, 48, 64), dtype=torch.uint8)
    regions = segment_batch(pictures, 5, detector)
    assert regions.shape == (3, 5, FEATURES + REGION)
    found = present(regions)
    assert found.all()  # threshold 0: every slot holds a region
    assert (regions[..., XY].abs() <= 1).all() and regions[..., FEATURES:].abs().sum() > 0
    strict = RegionDetector(NAME, size=96, threshold=1.0)  # no random box scores 1
    strict.load_weights(str(weights))
    assert not present(segment_batch(pictures, 5, strict)).any()
    # the guard: a picture in which the detector sees nothing is flagged, one with regions is not
    _, warnings = segment_checked(pictures, strict, 5, Profile("detector", 5))
    assert all(w is not None and "found no object" in w for w in warnings)
    assert segment_checked(pictures, detector, 5, Profile("detector", 5))[1] == [None] * 3


def test_detector_weights_that_do_not_fit_are_one_line(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save({"nothing": torch.zeros(1)}, wrong)
    with pytest.raises(ConfigError, match="cannot be loaded"):
        RegionDetector(NAME).load_weights(str(wrong))


@pytest.mark.slow
def test_auto_picks_the_detector_for_photos_it_trains_and_answers_from_its_weights(
    tmp_path: Path, weights: Path
) -> None:
    rows = _photos(tmp_path / "pictures", 24)
    write_jsonl(rows, tmp_path / "train.jsonl")
    said: list[str] = []
    cache = tmp_path / "cache"
    options = TrainOptions(
        data=str(tmp_path / "train.jsonl"),
        out=tmp_path / "run",
        epochs=2,
        batch_images=8,
        cache_dir=cache,
        model={**TINY, **SMALL, "image_size": 64},
        detector_weights=str(weights),
    )
    train(options, on_update=lambda e: said.append(e.get("message", "")))
    assert any(m.startswith("image tokens: objects, detector finder") for m in said), said
    ckpt = load_checkpoint(tmp_path / "run" / "best")
    assert (ckpt.model.cfg.image_tokens, ckpt.model.cfg.finder) == ("objects", "detector")
    written = torch.load(weights, weights_only=True)
    carried = ckpt.model.encoder.detector.model.state_dict()
    assert all(torch.equal(carried[k], v) for k, v in written.items())  # the checkpoint carries the weights
    stored = stored_bytes(cache)
    assert stored > 0  # each picture's regions went to disk once
    weights.rename(weights.with_suffix(".gone"))  # answering needs the checkpoint alone
    try:
        with Client(
            "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tmp_path / "run" / "best")
        ) as c:
            response = c.ask(rows[0].image, "Is it bright?")
    finally:
        weights.with_suffix(".gone").rename(weights)
    assert response.answer in ("yes", "no") and response.warning is None
