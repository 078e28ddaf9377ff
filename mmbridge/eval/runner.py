"""Ask every provider the same samples; append one row per (sample, provider) to samples.jsonl as answers arrive.

A run that is killed and started again reads the rows it has and asks only for the rest. A
failed call is a row with an ``error`` (never an answer to score); a task a provider does not
support is a row marked ``unsupported``, written without calling it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..batch import run_batch
from ..client import Client
from ..data.sample import Sample
from ..errors import CacheError, UnsupportedTaskError
from ..types import Response, Task
from .metrics.vqa import vqa_accuracy

__all__ = ["ROWS_FILE", "read_rows", "run_eval", "score"]

ROWS_FILE = "samples.jsonl"


def score(sample: Sample, response: Response) -> float | None:
    """The per-sample score of vqa (VQA accuracy) and verify (1 or 0); captions are scored as a corpus."""
    if sample.task is Task.VQA:
        return vqa_accuracy(response.answer, sample.answers or [])
    if sample.task is Task.VERIFY:
        return float(response.label is not None and response.label == sample.label)
    return None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The complete rows of ``path``; a last line cut short by a kill is dropped from the file."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):  # a partial last line: remove it so appends start on a fresh line
        with path.open("r+b") as f:
            f.truncate(end)
        data = data[:end]
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _row(sample: Sample, provider: str, response: Response | None, error: Exception | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sample_id": sample.id,
        "provider": provider,
        "task": sample.task.value,
        "type": sample.meta.get("type"),
        "prediction": None,
        "answer": None,
        "label": None,
        "score": None,
        "confidence": None,
        "latency_s": None,
        "input_tokens": None,
        "output_tokens": None,
        "cost_usd": None,
        "cached": False,
        "unsupported": isinstance(error, UnsupportedTaskError),
        "error": None,
    }
    if response is not None:
        row.update(
            prediction=response.text,
            answer=response.answer,
            label=response.label,
            score=score(sample, response),
            confidence=response.confidence,
            latency_s=response.latency_s,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost_usd=response.usage.cost_usd,
            cached=response.cached,
        )
    elif error is not None and not row["unsupported"]:
        row["error"] = {"type": type(error).__name__, "message": str(error)}
    return row


async def run_eval(
    clients: Mapping[str, Client],
    samples: list[Sample],
    out: Path,
    *,
    concurrency: int = 8,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Fill ``out/samples.jsonl`` with a row per (sample, provider) and return all rows."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ROWS_FILE
    rows = read_rows(path)
    have = {(r["sample_id"], r["provider"]) for r in rows}
    todo = [(s, name) for s in samples for name in clients if (s.id, name) not in have]
    broken: list[CacheError] = []  # a cache that fails stops the run: answers would not be kept
    with path.open("a", encoding="utf-8") as sink:

        def keep(row: dict[str, Any]) -> None:
            sink.write(json.dumps(row) + "\n")
            sink.flush()  # a row on disk is an answer a rerun will not ask for again
            rows.append(row)

        async def ask(item: tuple[Sample, str]) -> None:
            if broken:
                return
            sample, name = item
            client = clients[name]
            if sample.task not in client.provider.capabilities:
                keep(
                    _row(
                        sample, name, None, UnsupportedTaskError(name, sample.task.value, client.provider.capabilities)
                    )
                )
                return
            try:
                response = await client.agenerate(sample.to_request(client.image(sample.image)))
            except CacheError as exc:
                broken.append(exc)
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error row, counted apart
                keep(_row(sample, name, None, exc))
            else:
                keep(_row(sample, name, response, None))

        await run_batch(ask, todo, concurrency=concurrency, progress=progress, description="evaluating")
    if broken:
        raise broken[0]
    return rows
