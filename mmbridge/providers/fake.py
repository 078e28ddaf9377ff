"""``fake``: deterministic answers derived from the request, for tests, demos and dry runs."""

from __future__ import annotations

import asyncio
import hashlib

from pydantic import BaseModel, ConfigDict

from ..bounds import Delay, Fraction, Seed
from ..errors import ProviderError
from ..extract import response_from_text
from ..provider import BaseProvider
from ..registry import ProviderPlugin
from ..types import Request, Response, Task, Usage

__all__ = ["FakeOptions", "FakeProvider", "plugin"]

#: name -> RGB; the fake names an image by the nearest of these to its mean colour
_PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 60, 180),
    "orange": (240, 140, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
}
_NEUTRAL = ("white", "black", "gray")
_WORDS = ("circle", "square", "triangle", "left", "right", "red", "blue", "2", "3")


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "fake-1"
    #: changes every hash-derived answer, to simulate a different model
    seed: Seed = 0
    #: seconds each call waits, to simulate network latency
    delay_s: Delay = 0.0
    #: share of requests (chosen by hash, so the same ones each time) that fail with a ProviderError
    error_rate: Fraction = 0.0
    tasks: frozenset[Task] = frozenset(Task)


class FakeProvider(BaseProvider):
    """Answers from a hash of the request and the image's mean colour. Same request, same answer."""

    def __init__(self, name: str, options: FakeOptions) -> None:
        super().__init__(name)
        self.options = options
        self.model = options.model
        self.capabilities = options.tasks

    @property
    def identity(self) -> dict[str, object]:
        return {"type": "fake", "model": self.model, "seed": self.options.seed}

    def _hash(self, request: Request) -> int:
        key = f"{self.options.seed}|{request.task}|{request.image.content_hash}|{request.prompt}|{request.choices}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")

    @staticmethod
    def _color(request: Request) -> str:
        """The most common palette colour, preferring a real colour over a white or grey background."""
        import numpy as np

        names = list(_PALETTE)
        pixels = np.asarray(request.image.pil.resize((16, 16)), dtype=np.int32).reshape(-1, 1, 3)
        distances = ((pixels - np.array([_PALETTE[n] for n in names])) ** 2).sum(axis=2)
        counts = dict(zip(names, np.bincount(distances.argmin(axis=1), minlength=len(names)).tolist(), strict=True))
        chromatic = {n: c for n, c in counts.items() if n not in _NEUTRAL and c >= 8}  # >= 3% of 256
        pool = chromatic or counts
        return max(pool, key=lambda n: pool[n])

    def _text(self, request: Request, h: int) -> str:
        color = self._color(request)
        if request.task is Task.CAPTION:
            return f"a picture with something {color} in it"
        if request.task is Task.VERIFY:
            return "yes" if h % 2 else "no"
        question = request.question.lower() if request.question else ""
        if request.choices:
            return color if color in request.choices else request.choices[h % len(request.choices)]
        if "color" in question or "colour" in question:
            return color
        if question.startswith("how many"):
            return str(h % 5 + 1)
        if question.startswith(("is ", "are ", "does ", "do ")):
            return "yes" if h % 2 else "no"
        return _WORDS[h % len(_WORDS)]

    async def _generate(self, request: Request) -> Response:
        if self.options.delay_s:
            await asyncio.sleep(self.options.delay_s)
        h = self._hash(request)
        if (h >> 20) % 10_000 < self.options.error_rate * 10_000:
            raise ProviderError("simulated failure (error_rate)", provider=self.name)
        text = self._text(request, h)
        usage = Usage(input_tokens=85 + len(request.prompt.split()), output_tokens=len(text.split()), cost_usd=0.0)
        return response_from_text(request, text, provider=self.name, model=self.model, usage=usage)


def build(name: str, options: FakeOptions) -> FakeProvider:
    return FakeProvider(name, options)


plugin = ProviderPlugin(
    factory="mmbridge.providers.fake:build",
    options=FakeOptions,
    description="deterministic answers derived from the request (tests, demos)",
)
