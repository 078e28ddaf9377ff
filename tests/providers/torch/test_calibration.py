"""Calibrated confidences: temperature scaling fitted on validation, stored in the checkpoint, used when answering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from mmbridge_torch.calibration import fit_temperature

from mmbridge import Client
from mmbridge.config import CacheConfig, Config
from mmbridge.eval.stats import expected_calibration_error


def test_an_overconfident_model_is_cooled_and_its_calibration_error_falls() -> None:
    gen = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 4, (2000,), generator=gen)
    logits = torch.randn(2000, 4, generator=gen)
    logits[torch.arange(2000), targets] += 1.5  # right about 70% of the time...
    logits = logits * 8  # ...and sure of nearly everything
    t = fit_temperature(logits, targets)
    assert t > 3
    correct = logits.argmax(-1) == targets
    before = expected_calibration_error(torch.softmax(logits, -1).max(-1).values.numpy(), correct.numpy())
    after = expected_calibration_error(torch.softmax(logits / t, -1).max(-1).values.numpy(), correct.numpy())
    assert before > 0.2 and after < 0.05


def test_the_provider_reports_confidence_through_the_checkpoint_temperature(
    tiny_run: Path, shapes_png: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "hot"
    shutil.copytree(tiny_run / "best", folder)
    config = json.loads((folder / "config.json").read_text())
    config["info"]["calibration"] = {"vqa": {"temperature": 100.0}, "verify": {"temperature": 100.0}}
    (folder / "config.json").write_text(json.dumps(config))
    off = Config(cache=CacheConfig(enabled=False))
    choices = ["circle", "square", "triangle"]
    with Client("torch", config=off, checkpoint=str(tiny_run / "best")) as plain:
        a = plain.ask(shapes_png, "What shape is the red object?", choices=choices)
        v = plain.verify(shapes_png, "the red object is a circle")
    with Client("torch", config=off, checkpoint=str(folder)) as cooled:
        b = cooled.ask(shapes_png, "What shape is the red object?", choices=choices)
        w = cooled.verify(shapes_png, "the red object is a circle")
        assert cooled.provider.inner.identity["temperature"] == {"vqa": 100.0, "verify": 100.0}
    assert b.answer == a.answer and w.label == v.label  # the answers stay
    assert abs(b.confidence - 1 / 3) < 0.02 and abs(w.confidence - 0.5) < 0.02  # near chance at T = 100
