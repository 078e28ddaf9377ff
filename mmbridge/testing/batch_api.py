"""The Files and Batches endpoints of the loopback OpenAI server, on a clock that turns "24h" into seconds.

A batch goes validating -> in_progress -> finalizing -> completed over ``BatchTiming``'s seconds;
its ``request_counts`` grow while it is in progress, and its lines are answered (by the server's
responder, as ``/v1/chat/completions`` would answer them) when it completes. ``BatchFault`` s
make the next batches fail validation, expire part-way, stall in finalizing, complete without
an output file, or answer some lines with an error. Every line's ``custom_id`` is counted, so a
test can check that nothing was submitted twice.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..wire import error_body

__all__ = ["BatchFault", "BatchTiming", "BatchStore"]

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class BatchTiming:
    """Seconds a batch spends in each state (real seconds; the API's are hours)."""

    validating_s: float = 0.1
    in_progress_s: float = 0.5
    finalizing_s: float = 0.1


@dataclass(frozen=True)
class BatchFault:
    """What goes wrong with the next batch created."""

    kind: str  # "fail_validation" | "expire" | "stall_finalizing" | "no_output_file" | "line_errors"
    #: expire: the share of lines done when the window ends; line_errors: every n-th line fails
    at: float = 0.5
    every: int = 2
    code: str = "token_limit_exceeded"
    message: str = (
        "Enqueued token limit reached for gpt-4o-mini in organization org-test. Limit: 90,000 enqueued tokens."
    )
    stall_s: float = 3600.0

    @classmethod
    def fail_validation(cls, code: str = "token_limit_exceeded", message: str | None = None) -> BatchFault:
        return cls("fail_validation", code=code, message=message or cls.message)

    @classmethod
    def expire(cls, at: float = 0.5) -> BatchFault:
        return cls("expire", at=at)


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str] | None
    lines: list[dict[str, Any]]
    created: float
    fault: BatchFault | None
    created_at: int = field(default_factory=lambda: int(time.time()))
    cancelled: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: str | None = None  # the terminal status once reached
    counts: dict[str, int] | None = None  # request_counts once final


class BatchStore:
    """Files and batches in memory; ``complete(body) -> chat.completion dict`` answers a line."""

    def __init__(self, complete: Callable[[dict[str, Any]], dict[str, Any]], timing: BatchTiming) -> None:
        self.complete = complete
        self.timing = timing
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (filename, purpose, content)
        self.batches: dict[str, _Batch] = {}
        self.submitted: Counter[str] = Counter()  # custom_id -> batches it was submitted in
        self._faults: deque[BatchFault] = deque()
        self._lock = threading.RLock()

    def fail_next(self, *faults: BatchFault) -> None:
        with self._lock:
            self._faults.extend(faults)

    # -- files ----------------------------------------------------------------------------------

    def add_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        with self._lock:
            self.files[file_id] = (filename, purpose, content)
        return self._file_object(file_id)

    def _file_object(self, file_id: str) -> dict[str, Any]:
        filename, purpose, content = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def input_sizes(self) -> list[int]:
        """The size of each batch input file uploaded, in bytes."""
        with self._lock:
            return [len(content) for _, purpose, content in self.files.values() if purpose == "batch"]

    def file_content(self, file_id: str) -> bytes | None:
        with self._lock:
            entry = self.files.get(file_id)
        return entry[2] if entry else None

    # -- batches --------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = body.get("input_file_id")
        content = self.file_content(str(file_id))
        if content is None:
            return 404, error_body(f"No such File object: {file_id}", param="input_file_id")
        if body.get("completion_window") != "24h" or body.get("endpoint") != "/v1/chat/completions":
            return 400, error_body("endpoint must be /v1/chat/completions and completion_window 24h")
        lines = [json.loads(line) for line in content.splitlines() if line.strip()]
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            self.submitted.update(line.get("custom_id", "") for line in lines)
            batch = _Batch(
                batch_id, str(file_id), body["endpoint"], body.get("metadata"), lines, time.monotonic(), fault
            )
            self.batches[batch_id] = batch
            return 200, self._view(batch)

    def retrieve(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, error_body(f"No batch found with id '{batch_id}'.")
            return 200, self._view(batch)

    def cancel(self, batch_id: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, error_body(f"No batch found with id '{batch_id}'.")
            if batch.final is None and batch.cancelled is None:
                batch.cancelled = time.monotonic()
            return 200, self._view(batch)

    def list(self) -> dict[str, Any]:
        with self._lock:
            data = [self._view(b) for b in reversed(list(self.batches.values()))]
        return {"object": "list", "data": data, "first_id": None, "last_id": None, "has_more": False}

    def _status(self, batch: _Batch, now: float) -> tuple[str, float]:
        """The batch's status now and the share of its lines done."""
        t, fault = self.timing, batch.fault
        elapsed = now - batch.created
        if elapsed < t.validating_s:
            return "validating", 0.0
        if fault is not None and fault.kind == "fail_validation":
            return "failed", 0.0
        done = min(1.0, (elapsed - t.validating_s) / t.in_progress_s) if t.in_progress_s > 0 else 1.0
        if batch.cancelled is not None:
            at = min(1.0, max(0.0, (batch.cancelled - batch.created - t.validating_s) / t.in_progress_s))
            return "cancelled", at
        if fault is not None and fault.kind == "expire" and done >= fault.at:
            return "expired", fault.at
        if done < 1.0:
            return "in_progress", done
        stall = fault.stall_s if fault is not None and fault.kind == "stall_finalizing" else 0.0
        if elapsed < t.validating_s + t.in_progress_s + t.finalizing_s + stall:
            return "finalizing", 1.0
        return "completed", 1.0

    def _view(self, batch: _Batch) -> dict[str, Any]:
        status, done = (batch.final, 1.0) if batch.final else self._status(batch, time.monotonic())
        total = len(batch.lines)
        if status in TERMINAL and batch.final is None:
            self._finish(batch, status, int(done * total))
        if batch.counts is not None:
            counts = batch.counts
        elif status == "failed":
            counts = {"total": total, "completed": 0, "failed": 0}
        else:
            finished = int(done * total)
            failed = self._failing(batch, finished)
            counts = {"total": total, "completed": finished - failed, "failed": failed}
        errors = None
        if status == "failed" and batch.fault is not None:
            errors = {
                "object": "list",
                "data": [{"code": batch.fault.code, "message": batch.fault.message, "line": None}],
            }
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": status,
            "created_at": batch.created_at,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "errors": errors,
            "request_counts": counts,
            "metadata": batch.metadata,
        }

    def _failing(self, batch: _Batch, finished: int) -> int:
        fault = batch.fault
        if fault is not None and fault.kind == "no_output_file":
            return finished
        if fault is not None and fault.kind == "line_errors":
            return sum(1 for i in range(finished) if i % fault.every == fault.every - 1)
        return 0

    def _finish(self, batch: _Batch, status: str, finished: int) -> None:
        """Write the output and error files of a batch that just reached ``status``."""
        batch.final = status
        if status == "failed":
            return
        fault = batch.fault
        out, err = [], []
        for i, line in enumerate(batch.lines):
            ident = {"id": f"batch_req_{uuid.uuid4().hex[:16]}", "custom_id": line.get("custom_id")}
            if i >= finished:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                message = f"This request could not be executed before the batch was {status}."
                err.append({**ident, "response": None, "error": {"code": code, "message": message}})
            elif fault is not None and (
                fault.kind == "no_output_file" or (fault.kind == "line_errors" and i % fault.every == fault.every - 1)
            ):
                body = error_body("Invalid image: the image could not be decoded.", code="invalid_image")
                err.append(
                    {**ident, "response": {"status_code": 400, "request_id": "req_x", "body": body}, "error": None}
                )
            else:
                body = self.complete(line.get("body") or {})
                out.append(
                    {**ident, "response": {"status_code": 200, "request_id": "req_x", "body": body}, "error": None}
                )
        failed = sum(1 for e in err if e["response"] is not None)
        batch.counts = {"total": len(batch.lines), "completed": len(out), "failed": failed}
        if out:
            batch.output_file_id = self.add_file("output.jsonl", "batch_output", _jsonl(out))["id"]
        if err:
            batch.error_file_id = self.add_file("errors.jsonl", "batch_output", _jsonl(err))["id"]


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def parse_multipart(content_type: str, data: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields of a multipart/form-data body: name -> (filename, content)."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in data.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, body = part.partition(b"\r\n\r\n")
        disposition = next(
            (h for h in head.decode("utf-8", "replace").split("\r\n") if h.lower().startswith("content-disposition")),
            "",
        )
        params = dict(p.strip().split("=", 1) for p in disposition.split(";")[1:] if "=" in p)
        name = params.get("name", "").strip('"')
        filename = params["filename"].strip('"') if "filename" in params else None
        fields[name] = (filename, body[:-2] if body.endswith(b"\r\n") else body)
    return fields
