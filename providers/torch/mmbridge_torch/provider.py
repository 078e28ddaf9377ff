"""TorchProvider: the local fused model behind the Provider interface, with requests batched by a worker."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch

from mmbridge.batcher import Batcher, batch_failure, stamp_service
from mmbridge.errors import ConfigError
from mmbridge.extract import answer_response, label_response, normalize_answer
from mmbridge.provider import BaseProvider
from mmbridge.types import Request, Response, Task

from . import TorchOptions, resolve_checkpoint
from .checkpoint import WEIGHTS, load_checkpoint
from .decode import beam_search, greedy
from .device import autocast, bf16_helps, pick_device
from .guard import Profile, doubted, segment_checked
from .tensors import allowed_answers, letterbox
from .vocab import VERIFY, VQA

__all__ = ["TorchProvider", "build"]

SMALL_BATCH = 8  # fewer requests than this run on one CPU thread


class TorchProvider(BaseProvider):
    """Answers vqa, verify and caption requests with a checkpoint trained by ``mmbridge train``."""

    capabilities = frozenset(Task)

    def __init__(self, name: str, options: TorchOptions) -> None:
        super().__init__(name)
        self.options = options
        folder = resolve_checkpoint(options.checkpoint)
        if not folder.is_dir():
            raise ConfigError(f"checkpoint {options.checkpoint!r} is not a folder; give a path or builtin:shapes")
        self.device = pick_device(options.device)
        self._bf16 = bf16_helps(self.device)
        checkpoint = load_checkpoint(folder, self.device)
        self.net, self.vocab, self.answers = checkpoint.model, checkpoint.vocab, checkpoint.answers
        # the tasks its training data had (older checkpoints do not say: all); vqa needs answers too
        trained = {Task(t) for t in checkpoint.info.get("tasks", list(Task)) if t in set(Task)}
        self.capabilities = frozenset(t for t in trained if t is not Task.VQA or self.answers)
        self.answer_index = {a: i for i, a in enumerate(self.answers)}
        self.temperature = {task: _temperature(checkpoint.info, task) for task in ("vqa", "verify")}
        objects = self.net.cfg.image_tokens == "objects"
        cfg = self.net.cfg
        self.profile = Profile.from_info(checkpoint.info, cfg.finder, cfg.max_objects) if objects else None
        self.model = f"mmbridge-fused:{folder.name}"
        self._weights_hash = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()[:16]
        # one core is left to the event loop that builds the next batch while this one runs: on this
        # project's 2 cores, 64 concurrent callers got 1,530-1,640 answers a second on one thread and
        # 1,150-1,220 on two (alternating rounds); a lone client.batch of 1,024 was even (2,800 / 2,930)
        self._threads = options.threads or max(1, torch.get_num_threads() - 1)
        # calls at once that keep it busy: a full batch waiting while the one before it runs
        self.concurrency = 2 * options.max_batch
        self.batcher: Batcher[Request, Response] = Batcher(
            self._answer_batch,
            max_batch=options.max_batch,
            max_wait_ms=options.max_wait_ms,
            name=f"mmbridge-{name}",
            stamp=stamp_service,
        )

    @property
    def identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {"type": "torch", "weights": self._weights_hash, "beam_size": self.options.beam_size}
        if self.temperature != {"vqa": 1.0, "verify": 1.0}:  # calibrated confidences differ
            identity["temperature"] = self.temperature
        return identity

    async def _generate(self, request: Request) -> Response:
        return await self.batcher.submit(request)

    @property
    def batches(self) -> int:
        """How many batched forward passes have run (256 concurrent requests: about one)."""
        return self.batcher.batches

    # -- the worker thread ------------------------------------------------------------------------

    def _images(self, requests: Sequence[Request]) -> tuple[torch.Tensor | None, list[int | BaseException]]:
        """Each distinct picture once (by pixel hash), and for each request the index of its picture,
        or the error that stopped its picture from decoding (which fails that request alone)."""
        order: dict[str, int] = {}
        tensors: list[torch.Tensor] = []
        index: list[int | BaseException] = []
        size = self.net.cfg.image_size
        for request in requests:
            try:
                key = request.image.content_hash
                if key not in order:
                    tensors.append(letterbox(request.image.pil, size))
                    order[key] = len(tensors) - 1
                index.append(order[key])
            except Exception as exc:  # noqa: BLE001 - e.g. a truncated file: only its request fails
                index.append(exc)
        return (torch.stack(tensors).to(self.device) if tensors else None), index

    @torch.inference_mode()
    def _answer_batch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        images, found = self._images(requests)
        good = [i for i, f in enumerate(found) if isinstance(f, int)]
        results: list[Any] = list(found)  # each failed picture's error stays with its request
        if images is None:
            return results
        try:
            answers = self._answer(images, [requests[i] for i in good], [found[i] for i in good])  # type: ignore[misc]
        except (RuntimeError, MemoryError) as exc:  # out of memory, a kernel or device fault
            answers = [batch_failure(self.name, exc, len(good), "max_batch")] * len(good)
        for i, answer in zip(good, answers, strict=True):
            results[i] = answer
        return results

    def _answer(
        self, images: torch.Tensor, requests: Sequence[Request], image_of: list[int]
    ) -> list[Response | BaseException]:
        """Answer requests whose pictures are all in ``images`` (``image_of`` maps each to its row)."""
        results: list[Response | BaseException] = [RuntimeError("unanswered")] * len(requests)
        cfg = self.net.cfg
        if self.device.type == "cpu":  # set for this worker thread only
            # waking a second CPU thread costs more than it saves on a few requests (one ask: 40 ms
            # with two threads here, 24 ms with one); big batches use them all
            torch.set_num_threads(1 if len(requests) < SMALL_BATCH else self._threads)
        warnings: list[str | None] = [None] * len(images)
        if self.profile is not None:  # object tokens: each picture checked against the training pictures
            images, warnings = segment_checked(images, self.net.encoder.finder, cfg.max_objects, self.profile)
        with autocast(self.device, self._bf16):
            memory = self.net.encode_images(images)
            asks = [i for i, r in enumerate(requests) if r.task is not Task.CAPTION]
            if asks:
                tokens = torch.tensor(
                    [
                        self.vocab.encode(
                            requests[i].prompt, cfg.max_text, prefix=VQA if requests[i].task is Task.VQA else VERIFY
                        )
                        for i in asks
                    ],
                    device=self.device,
                )
                state = self.net.fuse(memory, torch.tensor([image_of[i] for i in asks], device=self.device), tokens)
                # the whole batch in a few tensor ops, then plain Python per request
                allowed = self._allowed([requests[i] for i in asks])
                logits = self.net.answer_logits(state).float().cpu().masked_fill(~allowed, -math.inf)
                # calibrated (calibration.py): dividing by T > 0 changes confidences, not answers
                best_p, best = torch.softmax(logits / self.temperature["vqa"], dim=-1).max(dim=-1)
                p_true = torch.sigmoid(self.net.verify_logit(state).float() / self.temperature["verify"]).cpu()
                for i, p, b, t, ok in zip(
                    asks, best_p.tolist(), best.tolist(), p_true.tolist(), allowed.any(-1).tolist(), strict=True
                ):
                    results[i] = doubted(self._ask_response(requests[i], p, b, t, ok), warnings[image_of[i]])
            captions = [i for i, r in enumerate(requests) if r.task is Task.CAPTION]
            if captions:
                c_image = torch.tensor([image_of[i] for i in captions], device=self.device)
                decode = greedy if self.options.beam_size == 1 else beam_search
                texts = decode(self.net, self.vocab, memory, c_image, beam_size=self.options.beam_size)
                for (text, probability), i in zip(texts, captions, strict=True):
                    results[i] = doubted(
                        Response(
                            task=Task.CAPTION, text=text, provider=self.name, model=self.model, confidence=probability
                        ),
                        warnings[image_of[i]],
                    )
        return results

    def _allowed(self, requests: Sequence[Request]) -> torch.Tensor:
        """(Q, A) bool: the answers each query may get, each distinct set of choices built once (a
        batch's questions mostly share theirs: building one per query was ~3% of a batch's time)."""
        masks: dict[tuple[str, ...], torch.Tensor] = {}
        rows = []
        for request in requests:
            key = tuple(request.choices or ())
            if key not in masks:
                masks[key] = allowed_answers(key, self.answer_index)
            rows.append(masks[key])
        return torch.stack(rows)

    def _ask_response(self, request: Request, p_best: float, best: int, p_true: float, any_allowed: bool) -> Response:
        if request.task is Task.VERIFY:
            label = p_true >= 0.5
            confidence = p_true if label else 1 - p_true
            return label_response(request, label, provider=self.name, model=self.model, confidence=confidence)
        if not any_allowed:  # none of the choices was ever an answer in training
            return Response(task=request.task, text="", provider=self.name, model=self.model)
        answer = self.answers[best]
        if request.choices:  # answer in the caller's spelling of the choice
            answer = next(c for c in request.choices if normalize_answer(c) == answer)
        return answer_response(request, answer, provider=self.name, model=self.model, confidence=p_best)

    async def aclose(self) -> None:
        self.batcher.close()


def build(name: str, options: TorchOptions) -> TorchProvider:
    return TorchProvider(name, options)


def _temperature(info: dict[str, Any], task: str) -> float:
    """The checkpoint's fitted temperature for ``task`` (calibration.py), 1 when it has none."""
    entry = info.get("calibration", {}).get(task) if isinstance(info.get("calibration"), dict) else None
    value = entry.get("temperature") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) and 1e-2 <= value <= 1e2 else 1.0
