"""Object tokens: the regions found in the pixels, and a model that trains and answers on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmbridge_torch.checkpoint import load_checkpoint, save_checkpoint
from mmbridge_torch.model import ModelConfig, ObjectModel, build_model
from mmbridge_torch.objects import FEATURES, XY, looks_segmentable, pictures_differ, segment, segment_batch
from mmbridge_torch.train import TrainOptions, train
from PIL import Image as PILImage
from PIL import ImageDraw

from mmbridge import Client
from mmbridge.config import CacheConfig, Config

from ...test_broken_files import _one_line_error, cli
from .conftest import TINY


def _scene(background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    image = PILImage.new("RGB", (64, 64), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((4, 4, 15, 15), fill=(220, 40, 40))  # a red square, top left
    draw.ellipse((40, 8, 55, 23), fill=(40, 80, 220))  # a blue circle, top right
    draw.polygon([(30, 40), (22, 58), (38, 58)], fill=(40, 170, 60))  # a green triangle, bottom middle
    return np.asarray(image).transpose(2, 0, 1).copy()


def test_each_flat_colour_object_becomes_one_described_token() -> None:
    found = segment(_scene(background=(30, 30, 30)), limit=5)
    assert found.shape == (5, FEATURES)
    present = np.abs(found).sum(-1) > 0
    assert present.tolist() == [True, True, True, False, False]  # three objects, then empty slots
    by_colour = {tuple(np.round(row[:3] * 255).astype(int)): row for row in found[present]}
    square, circle, triangle = by_colour[(220, 40, 40)], by_colour[(40, 80, 220)], by_colour[(40, 170, 60)]
    assert square[XY][0] < -0.5 and square[XY][1] < -0.5  # top left, in [-1, 1]
    assert circle[XY][0] > 0.4 and triangle[XY][1] > 0.4
    fill = 11  # area / box area
    assert square[fill] == pytest.approx(1.0) and 0.7 < circle[fill] < 0.85 and 0.4 < triangle[fill] < 0.65


def test_flat_scenes_are_segmentable_and_photos_are_not() -> None:
    scenes = torch.from_numpy(np.stack([_scene() for _ in range(4)]))
    noise = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8))
    assert looks_segmentable(scenes, limit=8)
    assert not looks_segmentable(noise, limit=8)
    assert not looks_segmentable(scenes[:0], limit=8)


def test_the_grounding_contrast_is_kept_for_pictures_that_differ_in_colour() -> None:
    same = torch.from_numpy(np.stack([_scene() for _ in range(6)]))  # the same three colours in each
    varied = []
    for i in range(6):
        image = PILImage.new("RGB", (64, 64), (255, 255, 255))
        ImageDraw.Draw(image).rectangle((8, 8, 30, 30), fill=((40 * i) % 256, 200 - 30 * i, 90))
        varied.append(np.asarray(image).transpose(2, 0, 1).copy())
    assert not pictures_differ(segment_batch(same, 8))
    assert pictures_differ(segment_batch(torch.from_numpy(np.stack(varied)), 8))


def test_an_object_checkpoint_saved_before_the_model_was_split_still_loads(tmp_path: Path) -> None:
    from mmbridge_torch.vocab import Vocab
    from safetensors.torch import load_file, save_file

    vocab = Vocab.build(["what shape is the red object"])
    model = build_model(ModelConfig(vocab_size=len(vocab), answer_size=2, image_tokens="objects", **TINY))
    save_checkpoint(tmp_path / "old", model, vocab, ["circle", "square"], {})
    weights = load_file(str(tmp_path / "old" / "model.safetensors"))
    d = model.cfg.d_model  # what models with object tokens carried before the grid and object models were split
    old = {"image_ln.weight": torch.ones(d), "image_ln.bias": torch.zeros(d), "text_pos": torch.zeros(1, 24, d)}
    old |= {"fusion_ln.weight": torch.ones(d), "fusion_ln.bias": torch.zeros(d)}
    # and the question's LSTM was the reader's own, not a module of its text encoder
    moved = {name.replace("reader.text.", "reader."): t for name, t in weights.items()}
    assert moved.keys() != weights.keys()
    save_file(moved | old, str(tmp_path / "old" / "model.safetensors"))
    loaded = load_checkpoint(tmp_path / "old").model
    assert isinstance(loaded, ObjectModel) and not hasattr(loaded, "text_pos")
    assert all(torch.equal(t, weights[name]) for name, t in loaded.state_dict().items())
    save_file(weights | {"stranger": torch.zeros(1)}, str(tmp_path / "old" / "model.safetensors"))
    with pytest.raises(Exception, match="unknown: stranger"):  # only those names are forgiven
        load_checkpoint(tmp_path / "old")


def test_an_object_checkpoint_saved_before_hop1_reads_the_words_as_it_did(tmp_path: Path) -> None:
    import json

    from mmbridge_torch.vocab import Vocab

    vocab = Vocab.build(["what shape is the object furthest from the red object"])
    old = build_model(ModelConfig(vocab_size=len(vocab), answer_size=2, image_tokens="objects", hop1="sum", **TINY))
    save_checkpoint(tmp_path / "old", old, vocab, ["circle", "square"], {})
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["model"]["hop1"]  # as written before the field existed
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(tmp_path / "old").model.eval()
    assert loaded.cfg.hop1 == "sum" and ModelConfig(vocab_size=2, answer_size=2).hop1 == "match"
    images = torch.from_numpy(_scene())[None]
    tokens = torch.tensor([vocab.encode("what shape is the object furthest from the red object", 24)])
    with torch.no_grad():
        state = loaded.fuse(loaded.encode_images(images), torch.tensor([0]), tokens)
        assert torch.allclose(state, old.eval().fuse(old.encode_images(images), torch.tensor([0]), tokens))
        loaded.reader.hop1 = "match"  # the same weights read the other way answer differently
        assert not torch.allclose(state, loaded.fuse(loaded.encode_images(images), torch.tensor([0]), tokens))


@pytest.mark.parametrize("text", ["lstm", "transformer"])
def test_data_without_scenes_trains_object_tokens_that_answer_all_three_tasks(
    text: str, tmp_path: Path, shapes_png: Path
) -> None:
    events: list[dict] = []
    model = {**TINY, "text_encoder": text}
    options = TrainOptions(
        data="builtin:shapes?split=train&images=40&seed=9", out=tmp_path / "run", epochs=1, model=model, scene=False
    )
    train(options, on_update=events.append)
    assert any(str(e.get("message")).startswith("image tokens: objects (") for e in events)
    ckpt = load_checkpoint(tmp_path / "run" / "best")
    assert isinstance(ckpt.model, ObjectModel) and ckpt.model.cfg.image_tokens == "objects"
    assert ckpt.model.cfg.text_encoder == text and type(ckpt.model.reader.text).__name__.lower().startswith(text)
    with Client(
        "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tmp_path / "run" / "best")
    ) as c:
        assert c.ask(shapes_png, "What shape is the red object?").answer
        assert c.verify(shapes_png, "the red object is a circle").confidence >= 0.5  # the likelier side
        assert set(c.caption(shapes_png).text.split()) <= set(ckpt.vocab.words)


@pytest.mark.parametrize("first", [0.0, 1.0])
def test_the_contrast_trains_alone_for_the_first_share_of_training(first: float, tmp_path: Path) -> None:
    # pictures that differ in colour keep the contrast; for its first share nothing reads the objects
    events: list[dict] = []
    options = TrainOptions(
        data="builtin:shapes?split=train&images=40&seed=9",
        out=tmp_path / "run",
        epochs=2,
        batch_images=8,
        model=TINY,
        scene=False,
        contrast_first=first,
        cache_dir=tmp_path / "cache",
        validate_every_s=1e9,
    )
    train(options, on_update=events.append)
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) >= 4 and all("grounding_loss" in e for e in steps)
    answered = ["vqa_acc" in e or "verify_acc" in e for e in steps]
    assert answered == [first == 0.0] * len(steps)
    said = f"on: alone for the first {first * 100:g}% of training, then beside the answers"
    assert {"event": "info", "message": "grounding contrast " + said} in events
    assert load_checkpoint(tmp_path / "run" / "last").info["grounding_contrast"] == said


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("--image-tokens", "blobs"), "auto, grid, objects, flat, shaded or detector"),
        (("--image-tokens", "detector"), "needs --detector-weights"),
        (("--detector", "yolo", "--detector-weights", "x.pt"), "--detector 'yolo' is not known"),
        (("--image-tokens", "objects", "--backbone", "resnet18"), "drop --backbone"),
        (("--text-encoder", "gru"), "--text-encoder 'gru': use lstm or transformer"),
        (("--text-encoder", "lstm", "--image-tokens", "grid"), "--text-encoder is the object reader's"),
    ],
)
def test_impossible_image_tokens_are_one_line(extra: tuple[str, ...], words: str, tmp_path: Path, capsys) -> None:
    data = "builtin:shapes?split=train&images=12"
    _one_line_error(*cli(capsys, "train", "--data", data, "--out", str(tmp_path / "o"), *extra), words)


def test_jpeg_noise_and_touching_objects_still_give_one_token_each() -> None:
    import io

    scene = _scene()
    buffer = io.BytesIO()
    PILImage.fromarray(scene.transpose(1, 2, 0)).save(buffer, "JPEG", quality=85)
    noisy = np.asarray(PILImage.open(buffer).convert("RGB")).transpose(2, 0, 1).copy()
    assert (np.abs(segment(noisy, limit=5)).sum(-1) > 0).sum() == 3
    touching = PILImage.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(touching)
    draw.rectangle((10, 10, 29, 29), fill=(220, 40, 40))
    draw.rectangle((30, 10, 49, 29), fill=(40, 80, 220))  # shares an edge with the red one
    found = segment(np.asarray(touching).transpose(2, 0, 1).copy(), limit=5)
    colours = sorted(tuple(np.round(row[:3] * 255).astype(int)) for row in found if np.abs(row).sum() > 0)
    assert colours == [(40, 80, 220), (220, 40, 40)]
