"""``prior``: a blind baseline that never looks at the image, so every report shows what guessing scores.

vqa: the most frequent training answer for the question's type, the type being its first
``key_words`` words ("how many circles", "what shape is"); with ``choices``, the most frequent
of those. verify: the majority label for the statement's type. caption: the most frequent
training reference.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..extract import answer_response, label_response
from ..provider import BaseProvider
from ..registry import ProviderPlugin
from ..types import Request, Response, Task

__all__ = ["PriorOptions", "PriorProvider", "plugin"]


class PriorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the training data the prior counts answers in (any dataset spec)
    train: str = "builtin:shapes?split=train"
    #: how many leading words of a question make its type
    key_words: int = Field(default=3, ge=1)
    #: where built-in datasets are generated
    cache_dir: Path = Path(".mmbridge/cache")


class PriorProvider(BaseProvider):
    """Answers from training-set frequencies alone."""

    def __init__(self, name: str, options: PriorOptions) -> None:
        from ..data import load_dataset

        super().__init__(name)
        self.options = options
        self.model = f"prior({options.train})"
        self.answers: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.labels: defaultdict[str, Counter[bool]] = defaultdict(Counter)
        captions: Counter[str] = Counter()
        for sample in load_dataset(options.train, cache_dir=options.cache_dir):
            if sample.task is Task.VQA and sample.question and sample.answers:
                self.answers[self._key(sample.question)].update(sample.answers)
                self.answers[""].update(sample.answers)
            elif sample.task is Task.VERIFY and sample.statement and sample.label is not None:
                self.labels[self._key(sample.statement)][sample.label] += 1
                self.labels[""][sample.label] += 1
            elif sample.task is Task.CAPTION:
                captions.update(sample.references or [])
        self.caption_text = captions.most_common(1)[0][0] if captions else "an image"

    @property
    def identity(self) -> dict[str, object]:
        return {"type": "prior", "train": self.options.train, "key_words": self.options.key_words}

    def _key(self, text: str) -> str:
        return " ".join(text.lower().split()[: self.options.key_words])

    def _answer(self, request: Request) -> tuple[str, float]:
        counts = self.answers.get(self._key(request.question or "")) or self.answers[""]
        if request.choices:
            allowed = {c: counts.get(c, 0) + self.answers[""].get(c, 0) * 1e-6 for c in request.choices}
            best = max(request.choices, key=lambda c: allowed[c])
            total = sum(allowed.values())
            return best, (allowed[best] / total if total else 1 / len(request.choices))
        if not counts:
            return "yes", 0.0
        best, n = counts.most_common(1)[0]
        return best, n / sum(counts.values())

    async def _generate(self, request: Request) -> Response:
        if request.task is Task.CAPTION:
            return Response(task=request.task, text=self.caption_text, provider=self.name, model=self.model)
        if request.task is Task.VERIFY:
            counts = self.labels.get(self._key(request.statement or "")) or self.labels[""]
            label = counts[True] >= counts[False]
            share = counts[label] / max(sum(counts.values()), 1)
            return label_response(request, label, provider=self.name, model=self.model, confidence=share)
        answer, share = self._answer(request)
        return answer_response(
            request, answer, provider=self.name, model=self.model, confidence=min(max(share, 0.0), 1.0)
        )


def build(name: str, options: PriorOptions) -> PriorProvider:
    return PriorProvider(name, options)


plugin = ProviderPlugin(
    factory="mmbridge.providers.prior:build",
    options=PriorOptions,
    description="blind baseline: most frequent training answer per question type",
)
