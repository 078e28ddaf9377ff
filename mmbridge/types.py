"""Request and Response: the frozen values every provider takes and returns."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import RequestError
from .image import Image

__all__ = ["Request", "Response", "Task", "Usage"]


class Task(StrEnum):
    """The shared vocabulary of every provider."""

    CAPTION = "caption"  # image -> one sentence
    VQA = "vqa"  # image + question (+ closed answer set) -> short answer
    VERIFY = "verify"  # image + statement -> true / false


def _unicode(text: str | None) -> str | None:
    """``text`` if it is real Unicode; a lone surrogate (from invalid UTF-8, or JSON's "\\ud800") is refused."""
    if text is not None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid text (it holds invalid UTF-8 or a lone surrogate); send UTF-8") from None
    return text


class Request(BaseModel):
    """One question about one image. Build it with :meth:`caption`, :meth:`vqa` or :meth:`verify`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    task: Task
    image: Image
    question: str | None = None
    choices: tuple[str, ...] | None = None
    statement: str | None = None
    #: free-form metadata carried through untouched (a sample id, say); not part of any cache key
    meta: dict[str, Any] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"{part}: " for part in first["loc"][:1])
            message = first["msg"].removeprefix("Value error, ")
            raise RequestError(f"invalid request: {where}{message}") from None

    @field_validator("question", "statement")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return _unicode(value)

    @field_validator("choices")
    @classmethod
    def _valid_choices(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if len(value) < 2:
            raise ValueError("give at least two choices, or none for an open answer")
        if len({c.strip().lower() for c in value}) != len(value) or any(not c.strip() for c in value):
            raise ValueError("choices must be distinct and non-empty")
        for choice in value:
            _unicode(choice)
        return value

    @model_validator(mode="after")
    def _fields_match_task(self) -> Request:
        needs = {Task.VQA: "question", Task.VERIFY: "statement"}.get(self.task)
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"task {self.task.value!r} needs a {needs}")
        for field in ("question", "statement"):
            if field != needs and getattr(self, field) is not None:
                raise ValueError(f"task {self.task.value!r} takes no {field}")
        if self.choices is not None and self.task is not Task.VQA:
            raise ValueError("only the vqa task takes choices")
        return self

    @classmethod
    def caption(cls, image: Any, **meta: Any) -> Request:
        return cls(task=Task.CAPTION, image=image, meta=meta)

    @classmethod
    def vqa(cls, image: Any, question: str, choices: list[str] | tuple[str, ...] | None = None, **meta: Any) -> Request:
        return cls(task=Task.VQA, image=image, question=question, choices=choices, meta=meta)

    @classmethod
    def verify(cls, image: Any, statement: str, **meta: Any) -> Request:
        return cls(task=Task.VERIFY, image=image, statement=statement, meta=meta)

    @property
    def prompt(self) -> str:
        """The text part of the request: the question, the statement, or '' for a caption."""
        return self.question or self.statement or ""


class Usage(BaseModel):
    """What a call consumed. Each field is None when the provider cannot tell."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)


def was_parsed(task: Task, answer: str | None, label: bool | None, text: str | None) -> bool:
    """Whether an output's structured result was read: vqa's answer, verify's label, a caption's text."""
    if task is Task.VQA:
        return answer is not None
    if task is Task.VERIFY:
        return label is not None
    return bool((text or "").strip())


class Response(BaseModel):
    """A provider's answer. ``text`` is the raw output; ``answer`` and ``label`` are extracted from it."""

    model_config = ConfigDict(frozen=True)

    task: Task
    text: str
    #: the short normalized answer (vqa); None when the output could not be parsed
    answer: str | None = None
    #: true / false (verify); None when the output could not be parsed
    label: bool | None = None
    provider: str
    model: str | None = None
    cached: bool = False
    #: seconds from the call to the answer, as the caller waited for it (queueing included)
    latency_s: float | None = Field(default=None, ge=0)
    #: seconds the provider itself spent on the answer: an API call's round trip; for a model that
    #: answers in batches, its batch's compute; a cache hit's lookup. ``latency_s - service_s`` is
    #: time spent waiting (for a batch to fill, behind other batches)
    service_s: float | None = Field(default=None, ge=0)
    #: the provider's own probability for its answer, when it has one
    confidence: float | None = Field(default=None, ge=0, le=1)
    usage: Usage = Usage()
    #: a cascade's stages asked before the one that answered (``provider``); empty otherwise
    escalated_from: tuple[str, ...] = ()
    #: the provider's doubt about this answer in words (e.g. the picture is unlike any it learnt
    #: from); its ``confidence`` is lowered too, so a cascade escalates it
    warning: str | None = None

    @property
    def parsed(self) -> bool:
        """Whether the task's structured result could be read from the output."""
        return was_parsed(self.task, self.answer, self.label, self.text)
