"""``standin``: a stand-in for a hosted API, for demos and benchmarks run without an API key.

It is not a model. It looks the request up in a dataset whose answers it knows (``truth``) and
answers right with probability ``accuracy`` (decided per sample by a seeded hash, so reruns agree),
otherwise wrong (another of the choices, the opposite label, a stock caption). Each call reports the
usage and cost a real call of ``model`` would: ``input_tokens`` and ``output_tokens`` at the given
prices per million (gpt-4o-mini's by default: a small image at low detail plus a short prompt in,
a word or two out). It reports no confidence, as the chat API does not. Its ``model`` says
"stand-in", so no report can mistake it for the real thing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..bounds import Fraction, Seed
from ..data.sample import Sample
from ..errors import ProviderError
from ..extract import answer_response, label_response
from ..provider import BaseProvider
from ..registry import ProviderPlugin
from ..types import Request, Response, Task, Usage

__all__ = ["StandInOptions", "StandInProvider", "plugin"]


class StandInOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the dataset (any spec) whose samples it can answer, and whose answers it knows
    truth: str
    #: the share of its answers that are right
    accuracy: Fraction = 0.97
    #: the API model it stands in for, and that model's prices (USD per million tokens)
    model: str = "gpt-4o-mini"
    input_per_million: float = Field(default=0.15, ge=0)
    output_per_million: float = Field(default=0.60, ge=0)
    input_tokens: int = Field(default=110, ge=0)
    output_tokens: int = Field(default=2, ge=0)
    seed: Seed = 0
    cache_dir: Path = Path(".mmbridge/cache")


class StandInProvider(BaseProvider):
    def __init__(self, name: str, options: StandInOptions) -> None:
        from ..data import load_dataset
        from ..image import Image

        super().__init__(name)
        self.options = options
        self.model = f"stand-in for {options.model}"
        self.known: dict[tuple[str, Task, str], Sample] = {}
        for s in load_dataset(options.truth, cache_dir=options.cache_dir):
            prompt = s.question if s.task is Task.VQA else s.statement if s.task is Task.VERIFY else ""
            self.known[(Image(s.image).content_hash, s.task, prompt or "")] = s
        cost = options.input_tokens * options.input_per_million + options.output_tokens * options.output_per_million
        self.usage = Usage(
            input_tokens=options.input_tokens, output_tokens=options.output_tokens, cost_usd=cost / 1_000_000
        )

    @property
    def identity(self) -> dict[str, object]:
        return {"type": "standin", **self.options.model_dump(mode="json", exclude={"cache_dir"})}

    def _right(self, sample_id: str, task: Task) -> bool:
        digest = hashlib.sha256(f"{self.options.seed}:{sample_id}:{task.value}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.options.accuracy

    async def _generate(self, request: Request) -> Response:
        prompt = (
            request.question if request.task is Task.VQA else request.statement if request.task is Task.VERIFY else ""
        )
        sample = self.known.get((request.image.content_hash, request.task, prompt or ""))
        if sample is None:
            raise ProviderError(f"the stand-in {self.name!r} knows only the samples of {self.options.truth}")
        right = self._right(sample.id, request.task)
        done = {"provider": self.name, "model": self.model, "usage": self.usage}
        if request.task is Task.VERIFY:
            return label_response(request, bool(sample.label) == right, **done)
        if request.task is Task.CAPTION:
            text = (sample.references or ["an image"])[0] if right else "an image"
            return Response(task=request.task, text=text, **done)
        truth = (sample.answers or ["unknown"])[0]
        wrong = [c for c in request.choices or sample.choices or [] if c != truth] or ["unknown"]
        return answer_response(request, truth if right else wrong[0], **done)


def build(name: str, options: StandInOptions) -> StandInProvider:
    return StandInProvider(name, options)


plugin = ProviderPlugin(
    factory="mmbridge.providers.standin:build",
    options=StandInOptions,
    description="stand-in for an API (demos, benchmarks): known answers at a set accuracy and price",
)
