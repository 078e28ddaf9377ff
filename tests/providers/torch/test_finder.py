"""The object finders on pictures as users have them, and the guard that flags pictures unlike the
training ones: anti-aliased, JPEG, non-square and gradient pictures keep object tokens with the
right object count; renders take the shaded finder; a photo-like picture is answered with a
warning and half the confidence."""

from __future__ import annotations

import random
from collections import Counter
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from mmbridge_torch import shaded
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.evaluation import evaluate_prepared
from mmbridge_torch.flat import find
from mmbridge_torch.model import ModelConfig
from mmbridge_torch.objects import pictures_differ, segment_batch, segments_like
from mmbridge_torch.tensors import letterbox, prepare
from mmbridge_torch.token_choice import choose_image_tokens
from mmbridge_torch.train import TrainOptions, train
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy import ndimage

from mmbridge import Client
from mmbridge.config import CacheConfig, Config
from mmbridge.data import load_dataset
from mmbridge.data.renders.draw import place
from mmbridge.image import Image

from .conftest import TINY

LOOKS = {
    "anti-aliased": "antialias=4",
    "jpeg 75": "jpeg=75",
    "96x64": "size=96&height=64",
    "gradient 110": "gradient=110",
    "12-16 objects": "size=128&objects=12-16",
    "anti-aliased jpeg on a gradient": "antialias=4&jpeg=75&gradient=100",
}


def _photo(seed: int, size: int = 64) -> np.ndarray:
    """A photo-like picture: smooth colour at several scales, and sensor noise. (3,S,S) uint8."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((size, size, 3))
    for sigma in (12, 4, 1.5):
        picture += ndimage.gaussian_filter(rng.normal(0, 1, (size, size, 3)), (sigma, sigma, 0)) * sigma * 40
    picture = 128 + picture + rng.normal(0, 6, picture.shape)
    return np.clip(picture, 0, 255).astype(np.uint8).transpose(2, 0, 1).copy()


@pytest.mark.parametrize("look", LOOKS)
def test_pictures_saved_as_users_save_them_keep_object_tokens_with_the_right_count(look: str, tmp_path: Path) -> None:
    spec = f"builtin:shapes?split=train&images=60&seed=5&{LOOKS[look]}"
    samples = list(load_dataset(spec, cache_dir=tmp_path))
    cfg = ModelConfig(vocab_size=10, answer_size=4)
    choice = choose_image_tokens(samples, cfg, keep_size=False)
    assert choice.kind == "objects" and choice.share >= 0.95
    pictures = {str(s.image): s for s in samples}
    wrong = []
    for path, sample in pictures.items():
        found = find(letterbox(Image(path).pil, choice.size).numpy(), cfg.max_objects)
        if len(found.masks) != len(sample.meta["scene"]["objects"]):
            wrong.append(Path(path).name)
    assert not wrong, f"{look}: wrong object count in {len(wrong)} of {len(pictures)} pictures: {wrong[:3]}"


def test_max_objects_decides_how_crowded_a_picture_may_be_for_object_tokens(tmp_path: Path, capsys) -> None:
    from ...test_broken_files import cli

    data = "builtin:shapes?split=train&images=24&seed=5&size=128&objects=12-16"
    out = tmp_path / "run"
    sizes = ("--d-model", "32", "--n-heads", "2", "--cnn-width", "16", "--image-layers", "1", "--fusion-layers", "1")
    args = ("train", "--data", data, "--out", str(out), "--epochs", "1", "--no-scene", *sizes)
    code, err = cli(capsys, *args, "--max-objects", "8")  # 12-16 objects a picture: more than it allows
    assert code == 0, err
    ckpt = load_checkpoint(out / "best")
    assert ckpt.model.cfg.max_objects == 8 and ckpt.model.cfg.image_tokens == "grid"
    assert ckpt.info["image_tokens"].startswith("grid (0% of sampled training pictures segment into objects")
    samples = list(load_dataset(data, cache_dir=tmp_path))  # the default, 16, takes them as objects
    assert choose_image_tokens(samples, ModelConfig(vocab_size=10, answer_size=4), keep_size=False).kind == "objects"


def test_a_picture_that_is_not_square_is_letterboxed_in_its_own_background_and_keeps_its_side(tmp_path: Path) -> None:
    samples = list(
        load_dataset("builtin:sort-of-clevr?split=train&images=20&seed=2&size=100&height=75", cache_dir=tmp_path)
    )
    assert Image(samples[0].image).pil.size == (100, 75)
    assert choose_image_tokens(samples, ModelConfig(10, 4), keep_size=False)[:2] == ("objects", 100)
    boxed = letterbox(Image(samples[0].image).pil, 100)
    assert boxed.shape == (3, 100, 100) and boxed[:, 0].float().mean() == 255  # white bars, not grey


def test_a_strong_background_gradient_gives_no_phantom_objects() -> None:
    ys, xs = np.mgrid[0:64, 0:64]
    ramp = 255 - 120 * (xs + ys) / 126  # 120 levels from one corner to the other
    picture = np.repeat(ramp[..., None], 3, 2).astype(np.uint8)
    picture[20:30, 20:30] = (220, 40, 40)
    found = find(picture.transpose(2, 0, 1).copy(), 16)
    assert len(found.masks) == 1 and found.masks[0].sum() == 100


def test_objects_that_touch_are_split_by_colour_and_a_jpeg_rim_is_not() -> None:
    image = PILImage.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 29, 29), fill=(220, 40, 40))
    draw.rectangle((30, 10, 49, 29), fill=(40, 80, 220))  # touches the red one
    pixels = np.asarray(image).transpose(2, 0, 1).copy()
    assert sorted(int(m.sum()) for m in find(pixels, 16).masks) == [400, 400]
    small = PILImage.new("RGB", (64, 64), "white")
    ImageDraw.Draw(small).rectangle((20, 20, 30, 30), fill=(0, 0, 255))  # pure blue: JPEG rings it darker
    buffer = BytesIO()
    small.save(buffer, "JPEG", quality=60)
    ringed = np.asarray(PILImage.open(buffer).convert("RGB")).transpose(2, 0, 1).copy()
    assert len(find(ringed, 16).masks) == 1


def test_black_objects_count_when_pictures_are_compared_by_colour() -> None:
    pictures = []
    for colours in [[(220, 40, 40)]] * 2 + [[(220, 40, 40), (0, 0, 0)]] * 2 + [[(40, 80, 220)]] * 2:
        image = PILImage.new("RGB", (64, 64), "white")
        draw = ImageDraw.Draw(image)
        for k, fill in enumerate(colours):
            draw.rectangle((4 + 30 * k, 4, 14 + 30 * k, 14), fill=fill)
        pictures.append(np.asarray(image).transpose(2, 0, 1).copy())
    regions = segment_batch(torch.from_numpy(np.stack(pictures)), 8)
    # {red}, {red, black} and {blue}, two pictures each: no set holds half; with black overlooked,
    # {red} would hold four of six and the pictures would be called alike
    assert pictures_differ(regions)


def test_a_photo_does_not_segment_like_a_flat_scene() -> None:
    for seed in range(5):
        assert not segments_like(find(_photo(seed), 16), 16)


@pytest.mark.slow
def test_a_checkpoint_trained_on_flat_scenes_flags_a_photo_at_answer_time(tmp_path: Path) -> None:
    options = TrainOptions(
        data="builtin:shapes?split=train&images=40&seed=9",
        out=tmp_path / "run",
        epochs=1,
        model=TINY,
        scene=False,
        cache_dir=tmp_path,
    )
    train(options)
    photo = PILImage.fromarray(_photo(1).transpose(1, 2, 0))
    flat = next(iter(load_dataset("builtin:shapes?split=test&images=40&seed=9", cache_dir=tmp_path))).image
    config = Config(cache=CacheConfig(enabled=False))
    with Client("torch", config=config, checkpoint=str(tmp_path / "run" / "best")) as client:
        plain = client.ask(flat, "What shape is the red object?")
        doubted = client.ask(photo, "What shape is the red object?")
        checked = client.verify(photo, "the red object is a circle")
    assert plain.warning is None
    assert doubted.warning and "does not segment like" in doubted.warning
    assert checked.warning and checked.confidence is not None and checked.confidence <= 0.5
    assert doubted.confidence is not None and doubted.confidence <= 0.5


def _render_counts(folder: Path, seed: int) -> dict[str, int]:
    """Each render's object count, recomputed from its seed as the generator drew it."""
    counts = {}
    for path in sorted((folder / "images").glob("*.jpg")):
        rng = random.Random(f"renders:{seed}:{int(path.stem)}")
        counts[str(path)] = len(place(rng, 128, 96, rng.randint(3, 6)))
    return counts


def test_renders_take_the_shaded_finder_and_it_counts_their_objects(tmp_path: Path) -> None:
    samples = list(load_dataset("builtin:renders?split=train&images=60&seed=4", cache_dir=tmp_path))
    choice = choose_image_tokens(samples, ModelConfig(10, 4), keep_size=False)
    assert choice.kind == "objects" and choice.finder == "shaded" and choice.size == 128
    assert choice.agree < 0.8  # the flat finder takes shadows for objects: the two disagree
    counts = _render_counts(Path(samples[0].image).parent.parent, 4)
    right = [len(shaded.find(letterbox(Image(p).pil, 128).numpy(), 16).masks) == n for p, n in counts.items()]
    assert sum(right) >= 0.95 * len(right), f"{sum(right)} of {len(right)} renders counted right"


@pytest.mark.slow
def test_a_few_hundred_steps_on_renders_beat_the_blind_prior_on_relational_questions(tmp_path: Path) -> None:
    spec = "builtin:renders?split={}&images=1000&seed=21"
    options = TrainOptions(
        data=spec.format("train"), out=tmp_path / "run", epochs=24, scene=False, cache_dir=tmp_path, seed=1
    )
    train(options)  # 800 pictures, 32 a step: 600 steps
    ckpt = load_checkpoint(tmp_path / "run" / "last")
    assert ckpt.model.cfg.finder == "shaded"
    test = list(load_dataset(spec.format("test"), cache_dir=tmp_path))
    data = prepare(test, ckpt.vocab, ckpt.answers, ckpt.model.cfg.image_size, ckpt.model.cfg.max_text, 8)
    ours = evaluate_prepared(ckpt.model, data, torch.device("cpu"))["vqa_by_type"]["relational"]
    # the blind prior: the commonest training answer of each kind of question
    seen: dict[str, Counter] = {}
    for s in load_dataset(spec.format("train"), cache_dir=tmp_path):
        seen.setdefault(s.meta["subtype"], Counter())[s.answers[0]] += 1
    relational = [s for s in test if s.meta["type"] == "relational"]
    prior = sum(seen[s.meta["subtype"]].most_common(1)[0][0] == s.answers[0] for s in relational) / len(relational)
    assert ours >= prior + 0.10, f"relational: ours {ours:.1%}, the blind prior {prior:.1%}"  # measured: 46.8 vs 35.2%
