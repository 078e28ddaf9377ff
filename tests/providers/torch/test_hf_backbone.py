"""A transformers vision tower as the fused model's backbone (``--backbone hf:FOLDER``): a tiny CLIP
tower written here trains frozen from cached patch features, and its checkpoint answers without it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach the hub

from mmbridge_torch.checkpoint import load_checkpoint  # noqa: E402
from mmbridge_torch.train import TrainOptions, train  # noqa: E402

from mmbridge import Client, ConfigError  # noqa: E402
from mmbridge.config import CacheConfig, Config  # noqa: E402

from .conftest import TINY, stored_bytes  # noqa: E402

DATA = "builtin:shapes?split=train&images=16&seed=2"


def write_tower(folder: Path, seed: int = 0) -> Path:
    """A 1-layer CLIP vision tower (patch 8) and its image processor, random weights."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
    )
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor(image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3]).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_a_written_tower_trains_frozen_and_its_checkpoint_answers_alone(tmp_path: Path, shapes_png: Path) -> None:
    from transformers import CLIPVisionModel

    tower = write_tower(tmp_path / "tower")
    written = CLIPVisionModel.from_pretrained(tower).state_dict()
    cache = tmp_path / "cache"
    options = TrainOptions(
        data=DATA,
        out=tmp_path / "run",
        epochs=2,
        batch_images=8,
        cache_dir=cache,
        model={**TINY, "backbone": f"hf:{tower}", "image_size": 64},  # 64 px: an 8x8 grid of patches
    )
    train(options)
    ckpt = load_checkpoint(tmp_path / "run" / "best")
    trunk = ckpt.model.encoder.trunk
    assert ckpt.model.encoder.grid == 8 and trunk.pixel_stats == ([0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    for key, value in written.items():  # frozen: the tower's weights as written, kept in the checkpoint
        assert torch.equal(trunk.tower.state_dict()[key], value), key
    before = stored_bytes(cache)
    assert before > 0  # each picture's patch features went to disk
    train(TrainOptions(**{**options.__dict__, "out": tmp_path / "again"}))
    assert stored_bytes(cache) == before
    shutil.rmtree(tower)  # answering needs neither the folder nor the hub
    with Client(
        "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tmp_path / "run" / "best")
    ) as c:
        assert c.ask(shapes_png, "What shape is the red object?").answer is not None


def test_a_tower_that_is_not_there_or_with_torchvision_weights_is_one_line(tmp_path: Path) -> None:
    missing = TrainOptions(data=DATA, out=tmp_path / "a", epochs=1, model={**TINY, "backbone": f"hf:{tmp_path / 'no'}"})
    with pytest.raises(ConfigError, match="cannot be loaded"):
        train(missing)
    tower = write_tower(tmp_path / "tower")
    both = TrainOptions(
        data=DATA, out=tmp_path / "b", epochs=1, model={**TINY, "backbone": f"hf:{tower}"}, backbone_weights="DEFAULT"
    )
    with pytest.raises(ConfigError, match="an hf: backbone brings its own"):
        train(both)
