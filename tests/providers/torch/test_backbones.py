"""Photo backbones: a torchvision trunk with written weights trains (frozen, features cached) and answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmbridge_torch.backbones import BACKBONES, trunk_shape
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.train import TrainOptions, train

from mmbridge import Client, ConfigError
from mmbridge.config import CacheConfig, Config

from .conftest import TINY, stored_bytes

DATA = "builtin:shapes?split=train&images=16&seed=2"


@pytest.mark.slow
def test_a_resnet_with_written_weights_trains_frozen_from_cached_features(tmp_path: Path, shapes_png: Path) -> None:
    from torchvision import models

    weights = tmp_path / "resnet18.pt"
    torch.manual_seed(7)
    torch.save(models.resnet18(weights=None).state_dict(), weights)  # the test's own weights, not a download
    written = torch.load(weights, weights_only=True)["layer1.0.conv1.weight"]
    cache = tmp_path / "cache"
    model = {**TINY, "backbone": "resnet18", "image_size": 64}
    options = TrainOptions(
        data=DATA,
        out=tmp_path / "run",
        epochs=2,
        batch_images=8,
        cache_dir=cache,
        model=model,
        backbone_weights=str(weights),
    )
    train(options)
    ckpt = load_checkpoint(tmp_path / "run" / "best")
    trunk = ckpt.model.encoder.trunk.state_dict()
    assert torch.equal(trunk["4.0.conv1.weight"], written)  # frozen: the weights as written, in the checkpoint
    features = list((cache / "features").iterdir())
    assert features  # each image's trunk features went to disk once
    before = stored_bytes(cache)
    train(TrainOptions(**{**options.__dict__, "out": tmp_path / "again"}))
    after = stored_bytes(cache)
    assert after == before  # the second run computed nothing new
    with Client(
        "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tmp_path / "run" / "best")
    ) as c:
        assert c.ask(shapes_png, "What shape is the red object?").answer is not None


def test_every_backbone_has_a_grid_and_bad_weights_are_one_error(tmp_path: Path) -> None:
    for name in BACKBONES:
        channels, grid = trunk_shape(name, 224)
        assert channels >= 64 and grid == 7
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a state dict")
    options = TrainOptions(
        data=DATA,
        out=tmp_path / "run",
        cache_dir=tmp_path,
        model={**TINY, "backbone": "resnet18"},
        backbone_weights=str(broken),
    )
    with pytest.raises(ConfigError, match="backbone weights .* cannot be loaded"):
        train(options)
    with pytest.raises(ConfigError, match="backbone 'vgg' is not known"):
        train(TrainOptions(data=DATA, out=tmp_path / "r2", cache_dir=tmp_path, model={**TINY, "backbone": "vgg"}))
