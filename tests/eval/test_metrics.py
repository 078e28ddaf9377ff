"""Metrics: caption scores equal pycocoevalcap 1.2 on random inputs; VQA accuracy on hand-worked cases."""

from __future__ import annotations

import random

import pytest

from mmbridge.eval.metrics import accuracy, bleu, chair, cider, normalize_vqa, rouge_l, tokenize, vqa_accuracy
from mmbridge.eval.metrics.text import bleu_from_stats, bleu_stats

WORDS = [
    "a",
    "an",
    "the",
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "triangle",
    "left",
    "right",
    "of",
    "to",
    "is",
    "and",
    "two",
    "three",
    "big",
    "small",
    "above",
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
    text = " ".join(words)
    return text.capitalize() + rng.choice(["", ".", " !", ", really."])


def _corpus(seed: int, images: int = 60) -> tuple[dict[str, str], dict[str, list[str]]]:
    rng = random.Random(seed)
    refs = {f"img{i}": [_sentence(rng) for _ in range(rng.randint(1, 5))] for i in range(images)}
    hyps = {key: rng.choice([_sentence(rng), rng.choice(value)]) for key, value in refs.items()}
    return hyps, refs


def _reference_scores(hyps: dict[str, str], refs: dict[str, list[str]]) -> tuple[list[float], float, float]:
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {k: [tokenize(r) for r in v] for k, v in refs.items()}  # their Java tokenizer replaced by ours
    res = {k: [tokenize(hyps[k])] for k in refs}
    b, _ = Bleu(4).compute_score(gts, res, verbose=0)
    c, _ = Cider().compute_score(gts, res)
    r, _ = Rouge().compute_score(gts, res)
    return list(b), float(c), float(r)


@pytest.mark.parametrize("seed", range(8))
def test_caption_metrics_equal_pycocoevalcap(seed: int) -> None:
    hyps, refs = _corpus(seed)
    expected_bleu, expected_cider, expected_rouge = _reference_scores(hyps, refs)
    assert bleu(hyps, refs) == pytest.approx(expected_bleu, abs=1e-6)
    assert cider(hyps, refs) == pytest.approx(expected_cider, abs=1e-6)
    assert rouge_l(hyps, refs) == pytest.approx(expected_rouge, abs=1e-6)


def test_bleu_stats_resum_to_the_corpus_score() -> None:
    hyps, refs = _corpus(3)
    stats = bleu_stats(hyps, refs)
    assert bleu_from_stats(stats) == pytest.approx(bleu(hyps, refs))
    assert bleu_from_stats(stats[:10]) == pytest.approx(
        bleu({k: hyps[k] for k in list(refs)[:10]}, {k: refs[k] for k in list(refs)[:10]})
    )


def test_tokenize_is_ptb_like() -> None:
    assert tokenize("A man's DOG, isn't it? (Yes.)") == "a man 's dog is n't it yes"
    assert tokenize("black-and-white photo...") == "black-and-white photo"


def test_perfect_and_empty_captions() -> None:
    refs = {"a": ["a red circle", "a red circle"], "b": ["two blue squares", "blue squares"]}
    assert bleu({"a": "a red circle", "b": "two blue squares"}, refs)[0] == pytest.approx(1.0)
    assert rouge_l({"a": "", "b": ""}, refs) == 0.0
    with pytest.raises(ValueError, match="no hypothesis"):
        cider({"a": "x"}, refs)


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("red", ["red"], 1.0),
        ("Red.", ["red"], 1.0),  # normalization: case, period
        ("the circle", ["circle"], 1.0),  # articles dropped
        ("two", ["2"], 1.0),  # number words
        ("dont know", ["don't know"], 1.0),  # contractions
        ("blue", ["red"], 0.0),
        (None, ["red"], 0.0),
        # ten answers: min(matches / 3, 1) averaged over the ten leave-one-out subsets
        ("red", ["red"] * 10, 1.0),
        ("red", ["red"] * 3 + ["pink"] * 7, (7 * 1.0 + 3 * (2 / 3)) / 10),
        ("red", ["red"] * 2 + ["pink"] * 8, (8 * (2 / 3) + 2 * (1 / 3)) / 10),
        ("red", ["red"] + ["pink"] * 9, (9 * (1 / 3) + 0) / 10),
        ("pink", ["red"] * 10, 0.0),
    ],
)
def test_vqa_accuracy_hand_worked(prediction: str | None, answers: list[str], expected: float) -> None:
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected)


def test_vqa_official_quirk_is_opt_in() -> None:
    unanimous = ["red"] * 10
    assert vqa_accuracy("Red.", unanimous) == 1.0
    assert vqa_accuracy("Red.", unanimous, official_quirk=True) == 0.0  # the official script skips normalizing
    assert vqa_accuracy("Red.", ["red"] * 9 + ["pink"], official_quirk=True) == 1.0
    assert normalize_vqa("3,000 dogs!") == "3000 dogs"


def test_accuracy_counts_unreadable_as_wrong() -> None:
    assert accuracy([True, False, None, True], [True, True, False, True]) == 0.5


def test_chair_counts_hallucinated_mentions() -> None:
    scenes = {
        "a": {"objects": [{"color": "red", "shape": "circle"}, {"color": "blue", "shape": "square"}]},
        "b": {"objects": [{"color": "green", "shape": "triangle"}]},
    }
    hyps = {"a": "a red circle next to a blue circle", "b": "a green triangle and some triangles"}
    assert chair(hyps, scenes) == {"chair_i": pytest.approx(1 / 4), "chair_s": 0.5}
    assert chair({"a": "a red circle", "b": "nothing here"}, scenes) == {"chair_i": 0.0, "chair_s": 0.0}
