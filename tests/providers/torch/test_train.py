"""Training writes safe checkpoints (safetensors + JSON), resumes after a kill, and works on unseen datasets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.evaluation import evaluate_prepared
from mmbridge_torch.model import GridModel, ModelConfig, build_model
from mmbridge_torch.scene import answer_referent, referent
from mmbridge_torch.tensors import letterbox, prepare
from mmbridge_torch.train import TrainOptions, train
from mmbridge_torch.vocab import UNK, Vocab

from mmbridge.data import load_dataset
from mmbridge.data.shapes import Style, generate_shapes

from .conftest import TINY, TRAIN, VAL


def test_checkpoint_is_weights_plus_json(tiny_run: Path) -> None:
    for part in ("best", "last"):
        assert sorted(p.name for p in (tiny_run / part).iterdir())[0:2] == ["config.json", "model.safetensors"]
    config = json.loads((tiny_run / "best" / "config.json").read_text())
    assert config["model"]["d_model"] == 32 and "<unk>" in config["vocab"] and config["answers"]
    assert not list(tiny_run.rglob("*.pt")) and not list(tiny_run.rglob("*.pkl"))  # nothing that runs code on load
    ckpt = load_checkpoint(tiny_run / "best")
    assert isinstance(ckpt.model, GridModel) and not ckpt.model.training


def test_resume_continues_from_last(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = json.loads((run / "last" / "state.json").read_text())["step"]
    options = TrainOptions(
        data=TRAIN,
        val=VAL,
        out=run,
        epochs=3,
        batch_images=8,
        resume=True,
        model=TINY,
        cache_dir=tiny_run.parent / "cache",
        validate_every_s=1e9,
    )
    train(options)
    after = json.loads((run / "last" / "state.json").read_text())
    assert after["step"] > before and after["epoch"] == 3


def test_unknown_words_and_any_image_size() -> None:
    vocab = Vocab.build(["what shape is the red object"])
    ids = vocab.encode("what colour is the zebra", 8)
    assert ids.count(UNK) == 2 and len(ids) == 8
    from PIL import Image as PILImage

    assert letterbox(PILImage.new("RGB", (300, 120), "red"), 64).shape == (3, 64, 64)
    model = build_model(ModelConfig(vocab_size=len(vocab), answer_size=3, **TINY))
    memory = model.encode_images(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))
    state = model.fuse(memory, torch.tensor([0, 1, 1]), torch.tensor([ids[:6]] * 3))
    assert model.answer_logits(state).shape == (3, 3) and model.verify_logit(state).shape == (3,)


@pytest.mark.slow
def test_train_command_on_a_differently_styled_dataset(tmp_path: Path) -> None:
    style = Style(
        colors={
            "cyan": (0, 190, 200),
            "magenta": (200, 0, 180),
            "gray": (110, 110, 110),
            "brown": (130, 80, 20),
            "lime": (150, 230, 40),
        },
        shapes=("circle", "square"),
        image_size=96,
        background=(20, 20, 20),
        background_name="black",
        max_objects=4,
        min_size=0.06,
        max_size=0.09,
    )
    generate_shapes(tmp_path / "data", images=40, seed=4, style=style, progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMBRIDGE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmbridge.cli.main",
            "train",
            "--data",
            str(tmp_path / "data" / "train.jsonl"),
            "--val",
            str(tmp_path / "data" / "val.jsonl"),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--batch-images",
            "8",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "best checkpoint" in result.stderr and "validation" in result.stderr
    ckpt = load_checkpoint(tmp_path / "run" / "best")
    assert "magenta" in ckpt.vocab.index and "cyan" in ckpt.answers + ckpt.vocab.words


def test_referent_is_the_object_named_first() -> None:
    scene = {
        "width": 64,
        "height": 64,
        "objects": [
            {"color": "red", "shape": "circle", "x": 10, "y": 50, "size": 5},  # cell (1, 6)
            {"color": "blue", "shape": "circle", "x": 40, "y": 20, "size": 5},  # cell (5, 2)
            {"color": "green", "shape": "square", "x": 60, "y": 5, "size": 5},  # cell (7, 0)
        ],
    }
    names = (["blue", "green", "purple", "red"], ["circle", "square", "triangle"])
    assert referent("What color is the object closest to the red object?", scene, *names, 64) == 6 * 8 + 1
    assert referent("The blue circle is left of the red circle.", scene, *names, 64) == 2 * 8 + 5
    assert referent("What color is the square?", scene, *names, 64) == 7  # the only square
    assert referent("How many circles are there?", scene, *names, 64) == -1  # two circles: no one object
    assert referent("Is there a purple triangle?", scene, *names, 64) == -1  # not in the scene
    assert referent("How many objects are there?", scene, *names, 64) == -1
    # the second object a statement names ("blue circle" is one name, not two)
    assert referent("The blue circle is left of the red circle.", scene, *names, 64, nth=1) == 6 * 8 + 1
    assert referent("the green object is above the blue object", scene, *names, 64, nth=1) == 2 * 8 + 5
    assert referent("the red object is a square", scene, *names, 64, nth=1) == 7
    assert referent("there is exactly one square", scene, *names, 64, nth=1) == -1  # one name only
    # the second hop: the one object an answer describes
    assert answer_referent("blue", scene, *names, 64) == 2 * 8 + 5
    assert answer_referent("square", scene, *names, 64) == 7
    assert answer_referent("circle", scene, *names, 64) == -1  # two circles
    assert answer_referent("left", scene, *names, 64) == -1


@pytest.mark.parametrize("side", [75, 33, 100])
def test_image_sizes_that_are_not_multiples_of_eight(side: int) -> None:
    vocab = Vocab.build(["what shape is the red object"])
    model = build_model(ModelConfig(vocab_size=len(vocab), answer_size=3, image_size=side, **TINY)).eval()
    memory = model.encode_images(torch.zeros(2, 3, side, side, dtype=torch.uint8))
    cells = -(-side // 8)  # the CNN makes ceil(side / 8) cells a side
    assert memory.tokens.shape[1] == cells * cells + 1  # and the sink
    state = model.fuse(memory, torch.tensor([0, 1]), torch.tensor([vocab.encode("what shape is it", 8)] * 2))
    assert model.answer_logits(state).shape == (2, 3)


def test_a_time_budget_with_many_epochs_still_warms_up(tmp_path: Path) -> None:
    # the warmup counts steps: as a share of 10,000 epochs' progress it would be no step at all
    rates: list[float] = []
    options = TrainOptions(
        data=TRAIN,
        out=tmp_path / "run",
        epochs=10_000,
        max_minutes=0.02,
        batch_images=8,
        model=TINY,
        cache_dir=tmp_path / "cache",
        validate_every_s=1e9,
    )
    train(options, on_update=lambda e: rates.append(e["lr"]) if e["event"] == "step" else None)
    assert len(rates) >= 2 and rates[0] <= options.lr / 50 and rates[1] > rates[0]


def test_evaluation_leaves_the_model_in_the_mode_it_found(tmp_path: Path) -> None:
    samples = list(load_dataset("builtin:shapes?split=val&images=20&seed=3", cache_dir=tmp_path))
    vocab = Vocab.build([s.question or s.statement or "" for s in samples])
    data = prepare(samples, vocab, ["red"], 64, 24, 40)
    model = build_model(ModelConfig(vocab_size=len(vocab), answer_size=1, d_model=32, cnn_width=8))
    for mode in (False, True):
        model.train(mode)
        evaluate_prepared(model, data, torch.device("cpu"))
        assert model.training is mode
