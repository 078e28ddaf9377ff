"""The one extraction rule that turns free text into an answer or a label."""

from __future__ import annotations

import pytest

from mmbridge.extract import extract_answer, extract_label, normalize_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Red.", "red"),
        ("  The circle ", "circle"),
        ("Three", "3"),
        ('"a square"', "square"),
        ("Let me look.\nThe shape on the left is round.\nAnswer: circle", "circle"),
        ("**Final answer:** Two.", "2"),
        ("", None),
        ("...", None),
    ],
)
def test_open_answers(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Circle", "circle"),
        ("It is a square.", "square"),
        ("Answer: TRIANGLE", "triangle"),
        ("circle or square", None),  # two choices named: unparseable, not guessed
        ("hexagon", None),
    ],
)
def test_closed_answers_pick_exactly_one_choice(text: str, expected: str | None) -> None:
    assert extract_answer(text, ["circle", "square", "triangle"]) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True),
        ("true.", True),
        ("Correct, it is.", True),
        ("No.", False),
        ("FALSE", False),
        ("Reasoning...\nAnswer: no", False),
        ("maybe", None),
        ("", None),
    ],
)
def test_labels(text: str, expected: bool | None) -> None:
    assert extract_label(text) is expected


def test_normalize_answer_keeps_single_article_words() -> None:
    assert normalize_answer("A") == "a"
    assert normalize_answer("An apple!") == "apple"
