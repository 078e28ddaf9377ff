"""Sample and Dataset: one scored example (image + task + ground truth) and a list of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ..types import Request, Task

__all__ = ["Dataset", "Sample"]


class Sample(BaseModel):
    """One line of a dataset file. ``image`` is resolved against the file's folder when read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    image: Path
    task: Task
    question: str | None = None
    #: vqa ground truth: one answer, or the ten human answers of VQA-style data
    answers: list[str] | None = None
    choices: list[str] | None = None
    statement: str | None = None
    label: bool | None = None
    #: caption ground truth: reference captions
    references: list[str] | None = None
    meta: dict[str, Any] = {}

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _ground_truth_fits_task(self) -> Sample:
        required = {
            Task.VQA: ("question", "answers"),
            Task.CAPTION: ("references",),
            Task.VERIFY: ("statement", "label"),
        }[self.task]
        for name in required:
            value = getattr(self, name)
            if value is None or value == []:
                raise ValueError(f"a {self.task.value} sample needs {name!r}")
        if self.choices is not None and self.answers and not set(self.answers) & set(self.choices):
            raise ValueError("none of 'answers' is among 'choices'")
        return self

    def to_request(self, image: Any = None) -> Request:
        """The request a provider answers for this sample (ground truth left out)."""
        return Request(
            task=self.task,
            image=image if image is not None else self.image,
            question=self.question,
            choices=tuple(self.choices) if self.choices else None,
            statement=self.statement,
            meta={"sample_id": self.id},
        )


@dataclass
class Dataset:
    """Samples read from one source, in file order."""

    samples: list[Sample]
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def tasks(self) -> Counter[str]:
        return Counter(s.task.value for s in self.samples)

    def filter(self, tasks: set[str] | None = None, limit: int | None = None) -> Dataset:
        """Samples of the given tasks, the first ``limit`` of each task (file order)."""
        kept: list[Sample] = []
        per_task: Counter[str] = Counter()
        for sample in self.samples:
            if tasks is not None and sample.task.value not in tasks:
                continue
            if limit is not None and per_task[sample.task.value] >= limit:
                continue
            per_task[sample.task.value] += 1
            kept.append(sample)
        return Dataset(kept, self.source, dict(self.meta))
