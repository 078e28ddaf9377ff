"""Real data formats train: VQA v2 on soft scores with a capped answer set, COCO captions on the
caption head (best/ chosen by caption loss), and scene supervision only when asked for."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from mmbridge_torch.checkpoint import load_checkpoint
from mmbridge_torch.tensors import prepare, soft_targets
from mmbridge_torch.train import TrainOptions, _vocabularies, train
from PIL import Image as PILImage

from mmbridge import Client
from mmbridge.config import CacheConfig, Config
from mmbridge.data import load_dataset
from mmbridge.data.jsonl import write_jsonl

from .conftest import TINY

COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220)}


def _picture(path: Path, color: tuple[int, int, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    pixels = np.full((40, 56, 3), 245, dtype=np.uint8)
    x, y = rng.integers(4, 40), rng.integers(4, 24)
    pixels[y : y + 12, x : x + 12] = color
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path, quality=95)


def _vqa_v2(root: Path, images: int = 24) -> Path:
    questions, annotations = [], []
    for i in range(images):
        name = list(COLORS)[i % 3]
        _picture(root / "val2014" / f"COCO_val2014_{i:012d}.jpg", COLORS[name], i)
        questions.append({"image_id": i, "question": "What color is the square?", "question_id": 10 * i})
        # ten annotators: most say the colour, a few a near miss, one a rare word
        said = [name] * 7 + ["dark " + name] * 2 + [f"rare{i}"]
        answers = [{"answer": a, "answer_id": k + 1} for k, a in enumerate(said)]
        annotations.append({"question_id": 10 * i, "image_id": i, "answers": answers, "answer_type": "other"})
    (root / "annotations").mkdir(parents=True)
    path = root / "annotations" / "v2_OpenEnded_mscoco_val2014_questions.json"
    path.write_text(json.dumps({"data_subtype": "val2014", "questions": questions}))
    (root / "annotations" / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": annotations}))
    return path


def _coco(root: Path, images: int = 24) -> Path:
    entries, captions = [], []
    for i in range(images):
        name = list(COLORS)[i % 3]
        _picture(root / "val2017" / f"{i:012d}.jpg", COLORS[name], i)
        entries.append({"id": i, "file_name": f"{i:012d}.jpg"})
        captions += [
            {"id": 2 * i, "image_id": i, "caption": f"a {name} square"},
            {"id": 2 * i + 1, "image_id": i, "caption": f"a small {name} square on white"},
        ]
    path = root / "annotations" / "captions_val2017.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"images": entries, "annotations": captions}))
    return path


def test_ten_answers_become_soft_scores_and_the_answer_set_is_capped(tmp_path: Path) -> None:
    path = _vqa_v2(tmp_path / "vqa")
    samples = list(load_dataset(path))
    targets = dict(soft_targets(samples[0]))
    assert set(targets) == {"red", "dark red", "rare0"} and sum(targets.values()) == pytest.approx(1.0)
    assert targets["red"] > targets["dark red"] > targets["rare0"] > 0  # each candidate's VQA accuracy, normalized
    vocab, answers, covered = _vocabularies(samples, max_answers=3)
    assert answers == ["blue", "green", "red"] and covered == 1.0  # each sample's top answer is kept
    data = prepare(samples, vocab, answers, 32, 12, 8)
    pairs = zip(data.soft_index.tolist(), data.soft_value.tolist(), strict=True)
    kept = {answers[a]: round(v, 4) for (q, a), v in pairs if q == 0}
    assert kept == {"red": round(targets["red"], 4)}  # candidates outside the answer set are not trained on
    messages: list[str] = []
    out = tmp_path / "run"
    train(
        TrainOptions(data=str(path), val=str(path), out=out, epochs=3, batch_images=8, model=TINY, max_answers=3),
        on_update=lambda e: messages.append(e["message"]) if e["event"] == "info" else None,
    )
    # a flat 56x40 JPEG: letterboxed in its own background colour, its square is found
    assert messages[0] == "3 answers cover 100.0% of the vqa samples"
    assert messages[1].startswith("image tokens: objects (100% of sampled training pictures segment")
    assert messages[2].startswith("grounding contrast ")  # on or off, and why
    assert messages[3].startswith("calibrated on the validation split: vqa T=")
    with Client("torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(out / "best")) as client:
        assert client.ask(samples[0].image, "What color is the square?").answer in answers


def test_coco_captions_train_the_caption_head_and_choose_best_by_caption_loss(tmp_path: Path) -> None:
    path = _coco(tmp_path / "coco")
    spec = f"{path}?images={tmp_path / 'coco' / 'val2017'}"
    out = tmp_path / "run"
    options = TrainOptions(data=spec, val=spec, out=out, epochs=4, batch_images=8, model=TINY, validate_every_s=0)
    report = train(options)  # a validation after every step
    assert "caption_loss" in report and "vqa_acc" not in report
    best = load_checkpoint(out / "best").info
    history = best["history"]
    assert best["tasks"] == ["caption"] and len(history) >= 10
    assert best["val"]["caption_loss"] == pytest.approx(min(h["caption_loss"] for h in history), abs=1e-4)
    with Client("torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(out / "best")) as client:
        assert client.provider.capabilities == {"caption"}
        said = client.caption(tmp_path / "coco" / "val2017" / "000000000000.jpg").text.split()
        assert said and set(said) <= set(load_checkpoint(out / "best").vocab.words)


def test_scene_supervision_only_when_asked(tmp_path: Path) -> None:
    from mmbridge_torch.scene import attach, scene_vocab

    samples = [
        s for s in load_dataset("builtin:shapes?split=train&images=12", cache_dir=tmp_path) if s.task.value != "caption"
    ]
    vocab, answers, _ = _vocabularies(samples, 3129)
    data = prepare(samples, vocab, answers, 64, 24, 40)
    assert data.cell_color is None and data.q_referent is None  # the generic path never reads scenes
    names = scene_vocab(samples)
    assert names is not None
    attach(data, names, 64)
    assert data.cell_color is not None and data.q_referent.shape == (len(data.q_image),)
    out = tmp_path / "run"
    train(
        TrainOptions(
            data="builtin:shapes?split=train&images=12",
            out=out,
            epochs=1,
            batch_images=4,
            model=TINY,
            cache_dir=tmp_path,
            scene=False,
        )
    )
    assert load_checkpoint(out / "best").model.cfg.aux_colors == 0  # no scene heads without scenes
    assert torch.is_tensor(data.soft_value)


@pytest.mark.slow
def test_object_tokens_learn_relations_from_answers_alone(tmp_path: Path) -> None:
    """No scene, no labels but the answers: a few thousand steps on shapes put relational questions
    far above what the blind prior scores on them."""
    from mmbridge_torch.evaluation import evaluate_prepared

    spec = "builtin:shapes?split={}&images=3000&seed=3"
    rows = {
        s: [x for x in load_dataset(spec.format(s), cache_dir=tmp_path) if x.task.value != "caption"]
        for s in ("train", "test")
    }
    write_jsonl(rows["train"], tmp_path / "train.jsonl")
    out = tmp_path / "run"
    train(TrainOptions(data=str(tmp_path / "train.jsonl"), out=out, epochs=30, cache_dir=tmp_path, scene=False, seed=0))
    ckpt = load_checkpoint(out / "best")
    assert ckpt.model.cfg.image_tokens == "objects"  # auto: flat-colour scenes
    test = prepare(rows["test"], ckpt.vocab, ckpt.answers, 64, ckpt.model.cfg.max_text, 8)
    relational = evaluate_prepared(ckpt.model, test, torch.device("cpu"))["vqa_by_type"]["relational"]
    # the best blind guess: the commonest training answer to questions that start with the same words
    common: dict[str, Counter[str]] = {}
    for s in rows["train"]:
        if s.task.value == "vqa":
            common.setdefault(" ".join(s.question.split()[:4]), Counter())[s.answers[0]] += 1
    asked = [s for s in rows["test"] if s.meta.get("type") == "relational"]
    blind = sum(common[" ".join(s.question.split()[:4])].most_common(1)[0][0] == s.answers[0] for s in asked) / len(
        asked
    )
    assert relational >= blind + 0.3, (relational, blind)
