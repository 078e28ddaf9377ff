"""Request and Response: frozen, validated, and errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from mmbridge import Image, Request, RequestError, Response, Task, Usage


def test_constructors_fill_the_task_fields(shapes_png: Path) -> None:
    vqa = Request.vqa(shapes_png, "What color is the circle?", ["red", "blue"], id="q1")
    assert vqa.task is Task.VQA and vqa.choices == ("red", "blue") and vqa.meta == {"id": "q1"}
    assert isinstance(vqa.image, Image) and vqa.prompt == "What color is the circle?"
    assert Request.caption(shapes_png).prompt == ""
    assert Request.verify(shapes_png, "a red circle").statement == "a red circle"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "vqa"}, "needs a question"),
        ({"task": "verify", "question": "q?"}, "needs a statement"),
        ({"task": "caption", "question": "q?"}, "takes no question"),
        ({"task": "vqa", "question": "  "}, "must not be empty"),
        ({"task": "vqa", "question": "q?", "choices": ["one"]}, "at least two choices"),
        ({"task": "vqa", "question": "q?", "choices": ["a", "A"]}, "distinct"),
        ({"task": "dance"}, "task"),
    ],
)
def test_invalid_requests_raise_request_error(shapes_png: Path, fields: dict, message: str) -> None:
    with pytest.raises(RequestError, match=message) as info:
        Request(image=shapes_png, **fields)
    assert "\n" not in str(info.value)


def test_values_are_frozen(shapes_png: Path) -> None:
    request = Request.caption(shapes_png)
    with pytest.raises(pydantic.ValidationError):
        request.task = Task.VQA  # type: ignore[misc]
    response = Response(task="vqa", text="red", answer="red", provider="p", usage=Usage(input_tokens=3))
    with pytest.raises(pydantic.ValidationError):
        response.answer = "blue"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        Response(task="vqa", text="x", provider="p", confidence=1.5)


def test_parsed_tells_whether_the_structured_result_was_read() -> None:
    assert Response(task="vqa", text="red", answer="red", provider="p").parsed
    assert not Response(task="verify", text="maybe", provider="p").parsed
    assert Response(task="caption", text="a cat", provider="p").parsed


def test_request_serializes_the_image_as_its_hash(shapes_png: Path) -> None:
    request = Request.vqa(shapes_png, "q?")
    assert request.model_dump()["image"] == Image(shapes_png).content_hash
