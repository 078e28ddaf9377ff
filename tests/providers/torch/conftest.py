"""A tiny checkpoint trained once per session on a small shapes split (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from mmbridge_torch.train import TrainOptions, train  # noqa: E402


def stored_bytes(cache: Path) -> int:
    """Bytes a run kept in ``cache``/features (a frozen trunk's features, a detector's regions)."""
    return sum(f.stat().st_size for f in (cache / "features").rglob("*") if f.is_file())


TINY = {"d_model": 32, "n_heads": 2, "cnn_width": 16, "image_layers": 1, "fusion_layers": 1, "caption_layers": 1}
TRAIN = "builtin:shapes?split=train&images=40&seed=9"
VAL = "builtin:shapes?split=val&images=40&seed=9"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    options = TrainOptions(
        data=TRAIN,
        val=VAL,
        out=out / "run",
        epochs=2,
        batch_images=8,
        cache_dir=out / "cache",
        model=TINY,
        validate_every_s=1e9,
    )
    train(options)
    return out / "run"
