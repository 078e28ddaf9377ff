"""Turn a model's free-text output into a short answer or a true/false label, or say it cannot.

The one rule every text-producing provider uses (documented in the README):

1. If the output has lines starting with ``Answer:``, only the text after the last one counts.
2. That text is normalized: lowercase, surrounding quotes and punctuation removed, a leading
   article (a, an, the) dropped, number words zero..twenty written as digits.
3. vqa with ``choices``: the choice whose normalized form equals the normalized text; else the
   one choice that occurs in it as whole words; else nothing (unparseable, never guessed).
   vqa without choices: the normalized text, if any is left.
4. verify: the first word decides: yes/true/correct/right -> True, no/false/incorrect/wrong -> False;
   anything else is unparseable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .types import Request, Response, Task

__all__ = ["extract_answer", "extract_label", "label_response", "normalize_answer", "response_from_text"]

_ANSWER_LINE = re.compile(r"^\s*\**\s*(?:final\s+)?answer\s*\**\s*[:：]\s*(.*)$", re.IGNORECASE | re.MULTILINE)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
        + ("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen")
        + ("nineteen", "twenty")
    )
}
_TRUE = {"yes", "true", "correct", "right", "y"}
_FALSE = {"no", "false", "incorrect", "wrong", "n"}
_EDGE = " \t\r\n\"'`*_.,;:!?()[]{}"


def _final_part(text: str) -> str:
    matches = _ANSWER_LINE.findall(text)
    return matches[-1] if matches else text


def normalize_answer(text: str) -> str:
    """Lowercase, trim quotes and punctuation, drop a leading article, write small numbers as digits."""
    words = [w.strip(_EDGE) for w in text.lower().split()]
    words = [_NUMBER_WORDS.get(w, w) for w in words if w]
    if len(words) > 1 and words[0] in ("a", "an", "the"):
        words = words[1:]
    return " ".join(words)


def extract_answer(text: str, choices: Sequence[str] | None = None) -> str | None:
    """The short answer in ``text``, or None when it cannot be read without guessing."""
    answer = normalize_answer(_final_part(text))
    if not answer:
        return None
    if choices is None:
        return answer
    normalized = {normalize_answer(c): c for c in choices}
    if answer in normalized:
        return normalized[answer]
    padded = f" {answer} "
    found = [c for norm, c in normalized.items() if norm and f" {norm} " in padded]
    return found[0] if len(found) == 1 else None


def extract_label(text: str) -> bool | None:
    """True or False from a yes/no style output, or None when it says neither."""
    words = normalize_answer(_final_part(text)).split()
    if not words:
        return None
    if words[0] in _TRUE:
        return True
    if words[0] in _FALSE:
        return False
    return None


def response_from_text(request: Request, text: str, **fields: Any) -> Response:
    """A Response whose ``answer`` / ``label`` are extracted from ``text`` by the rule above."""
    if request.task is Task.VQA:
        fields.setdefault("answer", extract_answer(text, request.choices))
    elif request.task is Task.VERIFY:
        fields.setdefault("label", extract_label(text))
    return Response(task=request.task, text=text, **fields)


def answer_response(request: Request, answer: str, **fields: Any) -> Response:
    """A vqa Response for a provider that picks its answer directly: the text is the answer."""
    return Response(task=request.task, text=answer, answer=answer, **fields)


def label_response(request: Request, label: bool, **fields: Any) -> Response:
    """A verify Response for a provider that decides true/false directly: text "yes" or "no"."""
    return Response(task=request.task, text="yes" if label else "no", label=label, **fields)
