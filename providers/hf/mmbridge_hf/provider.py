"""HFProvider: a transformers image-text-to-text model behind the Provider interface, requests batched
by a worker thread (mmbridge.batcher): closed questions and verify scored by likelihood (scoring.py),
open questions and captions generated in one left-padded ``generate`` per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import LogitsProcessorList

from mmbridge.batcher import Batcher, batch_failure, stamp_service
from mmbridge.errors import ConfigError
from mmbridge.extract import answer_response, label_response, response_from_text
from mmbridge.provider import BaseProvider
from mmbridge.types import Request, Response, Task, Usage

from . import HFOptions
from .loading import load
from .prompts import KEYS, chat_text, fingerprint
from .scoring import FirstStep, continuation_lengths, score_continuations

__all__ = ["HFProvider", "Scored", "build"]

VERIFY_CHOICES = ("yes", "no")


@dataclass(frozen=True)
class Scored:
    """One request's choices with their probabilities, and the tokens of its prompt and each choice."""

    choices: tuple[str, ...]
    probabilities: list[float]
    prompt_tokens: list[int]
    answer_tokens: list[int]


class HFProvider(BaseProvider):
    """Answers caption, vqa and verify with a pretrained vision-language model in this process."""

    capabilities = frozenset(Task)

    def __init__(self, name: str, options: HFOptions) -> None:
        super().__init__(name)
        unknown = sorted(set(options.prompts) - set(KEYS))
        if unknown:
            raise ConfigError(f"prompts: unknown key {unknown[0]!r}; use {', '.join(KEYS)}")
        self.options = options
        loaded = load(options)
        self.net, self.processor, self.device = loaded.model, loaded.processor, loaded.device
        self.revision, self.dtype = loaded.revision, loaded.dtype
        self.model = options.model
        self.concurrency = 2 * options.batch_size  # a full batch waits while the one before it runs
        self.batcher: Batcher[Request, Response] = Batcher(
            self._answer_batch,
            max_batch=options.batch_size,
            max_wait_ms=options.max_wait_ms,
            name=f"mmbridge-{name}",
            stamp=stamp_service,
        )

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "type": "hf",
            "model": self.options.model,
            "revision": self.revision,
            "dtype": str(self.dtype).removeprefix("torch."),
            "max_new_tokens": self.options.max_new_tokens,
            "prompts": fingerprint(self.options.prompts),
        }

    @property
    def batches(self) -> int:
        """How many batches the worker has run."""
        return self.batcher.batches

    async def _generate(self, request: Request) -> Response:
        return await self.batcher.submit(request)

    # -- the worker thread ------------------------------------------------------------------------

    def _answer_batch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        results: list[Any] = [None] * len(requests)
        pictures: dict[int, Any] = {}
        for i, request in enumerate(requests):
            try:
                pictures[i] = request.image.pil
            except Exception as exc:  # noqa: BLE001 - e.g. a truncated file: only its request fails
                results[i] = exc
        scored = [i for i in pictures if requests[i].choices or requests[i].task is Task.VERIFY]
        generated = [i for i in pictures if i not in set(scored)]
        for part, run in ((scored, self._choose), (generated, self._write)):
            if not part:
                continue
            try:
                answers = run([requests[i] for i in part], [pictures[i] for i in part])
            except (RuntimeError, MemoryError) as exc:  # out of memory, a kernel or device fault
                answers = [batch_failure(self.name, exc, len(part), "batch_size")] * len(part)
            for i, answer in zip(part, answers, strict=True):
                results[i] = answer
        return results

    def _prompt(self, request: Request) -> str:
        return chat_text(self.processor, request, self.options.prompts)

    def score_choices(self, requests: Sequence[Request], pictures: Sequence[Any]) -> list[Scored]:
        """Each request's choices (verify: yes, no) scored as continuations of its prompt,
        ``batch_size`` sequences a pass: their probabilities sum to 1."""
        flat: list[tuple[int, str, int]] = []  # (request, prompt + choice, the choice's tokens)
        spans: list[range] = []  # each request's places in flat
        for r, request in enumerate(requests):
            prompt = self._prompt(request)
            joiner = "" if prompt[-1:].isspace() else " "
            choices = request.choices or VERIFY_CHOICES
            lengths = continuation_lengths(self.processor.tokenizer, prompt, [joiner + c for c in choices])
            spans.append(range(len(flat), len(flat) + len(choices)))
            flat += [(r, prompt + joiner + c, n) for c, n in zip(choices, lengths, strict=True)]
        scores: list[float] = []
        tokens: list[int] = []
        size = self.options.batch_size
        for start in range(0, len(flat), size):
            chunk = flat[start : start + size]
            texts, images, lengths = [c[1] for c in chunk], [pictures[c[0]] for c in chunk], [c[2] for c in chunk]
            got, counts = score_continuations(self.net, self.processor, texts, images, lengths, self.device)
            scores += got
            tokens += counts
        out = []
        for request, mine in zip(requests, spans, strict=True):
            probabilities = torch.softmax(torch.tensor([scores[k] for k in mine], dtype=torch.float64), dim=0)
            out.append(
                Scored(
                    choices=tuple(request.choices or VERIFY_CHOICES),
                    probabilities=probabilities.tolist(),
                    prompt_tokens=[tokens[k] - flat[k][2] for k in mine],
                    answer_tokens=[flat[k][2] for k in mine],
                )
            )
        return out

    def _choose(self, requests: Sequence[Request], pictures: Sequence[Any]) -> list[Response]:
        out = []
        for request, scored in zip(requests, self.score_choices(requests, pictures), strict=True):
            best = max(range(len(scored.choices)), key=scored.probabilities.__getitem__)
            usage = Usage(
                input_tokens=scored.prompt_tokens[best], output_tokens=scored.answer_tokens[best], cost_usd=0.0
            )
            fields = {"provider": self.name, "model": self.model, "confidence": scored.probabilities[best]}
            if request.task is Task.VERIFY:
                out.append(label_response(request, scored.choices[best] == "yes", usage=usage, **fields))
            else:
                out.append(answer_response(request, scored.choices[best], usage=usage, **fields))
        return out

    @torch.inference_mode()
    def _write(self, requests: Sequence[Request], pictures: Sequence[Any]) -> list[Response]:
        """Open questions and captions: one left-padded, greedy ``generate`` for all of them."""
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        batch = self.processor(
            text=[self._prompt(r) for r in requests], images=[[p] for p in pictures], padding=True, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        step = FirstStep()
        done = self.net.generate(
            **batch,
            max_new_tokens=self.options.max_new_tokens,
            do_sample=False,
            logits_processor=LogitsProcessorList([step]),
            pad_token_id=tokenizer.pad_token_id,
        )
        new = done[:, batch["input_ids"].shape[1] :]
        first = step.of(new)
        prompts = batch["attention_mask"].sum(dim=1).tolist()
        lengths = (new != tokenizer.pad_token_id).sum(dim=1).tolist()  # a finished row is padded after its end
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        out = []
        for row, request in enumerate(requests):
            text = texts[row].strip()
            usage = Usage(input_tokens=int(prompts[row]), output_tokens=int(lengths[row]), cost_usd=0.0)
            fields: dict[str, Any] = {"provider": self.name, "model": self.model, "usage": usage}
            if request.task is Task.CAPTION:
                out.append(Response(task=Task.CAPTION, text=text, **fields))
            else:  # the first token's probability: how sure the model was of how its answer begins
                confidence = float(first[row]) if first is not None else None
                out.append(response_from_text(request, text, confidence=confidence, **fields))
        return out

    async def aclose(self) -> None:
        self.batcher.close()


def build(name: str, options: HFOptions) -> HFProvider:
    return HFProvider(name, options)
