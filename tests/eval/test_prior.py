"""The prior baseline answers from training frequencies and never looks at the image."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mmbridge import Client, Request
from mmbridge.data import load_dataset

TRAIN = "builtin:shapes?split=train&images=60&seed=2"


def test_prior_answers_the_most_frequent_training_answer_per_question_type(shapes_png: Path, tmp_path: Path) -> None:
    train = load_dataset(TRAIN, cache_dir=tmp_path / ".mmbridge" / "cache")
    counts = Counter(s.answers[0] for s in train if s.task == "vqa" and s.question.startswith("How many objects"))
    with Client("prior", train=TRAIN, cache_dir=tmp_path / ".mmbridge" / "cache") as client:
        answer = client.ask(shapes_png, "How many objects are there?", cache=False)
        assert answer.answer == counts.most_common(1)[0][0]
        assert answer.confidence == counts.most_common(1)[0][1] / sum(counts.values())
        blank = Path(tmp_path / "blank.png")
        from PIL import Image as PILImage

        PILImage.new("RGB", (8, 8)).save(blank)
        assert client.ask(blank, "How many objects are there?", cache=False).answer == answer.answer  # blind
        closed = client.ask(shapes_png, "What shape is the red object?", choices=["circle", "hexagon"], cache=False)
        assert closed.answer == "circle"  # the known choice wins over one never seen
        verdict = client.verify(shapes_png, "the red object is a circle", cache=False)
        # the majority label of training statements that open with the same three words ("the red object")
        labels = Counter(s.label for s in train if s.task == "verify" and s.statement.startswith("the red object"))
        assert sum(labels.values()) and verdict.label == (labels[True] >= labels[False])
        assert client.generate(Request.caption(shapes_png), cache=False).text in {
            r for s in train if s.task == "caption" for r in s.references
        }
