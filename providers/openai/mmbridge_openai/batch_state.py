"""What a run remembers of its batches, in ``--out/batches/PROVIDER.json``, written atomically at each change.

A batch's input file id is written before the batch is created, and its batch id as soon as it
is, so a run killed at any moment finds every line it submitted when it starts again: nothing is
submitted twice, and no batch is lost.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmbridge.atomic import atomic_write
from mmbridge.errors import RunError

__all__ = ["STATE_FORMAT", "TERMINAL", "BatchRecord", "BatchState", "load_state", "save_state"]

STATE_FORMAT = 1
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class BatchRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str
    #: None between the upload and the batch's creation (a kill there: the rerun looks it up)
    batch_id: str | None = None
    #: the status last seen ("uploaded" before the batch exists)
    status: str = "uploaded"
    #: custom_id -> (sample id, provider name) of every line in the input file
    lines: dict[str, tuple[str, str]]
    #: completed / failed / total, as last seen
    counts: tuple[int, int, int] = (0, 0, 0)
    #: its answers are in samples.jsonl: its lines may be submitted again (those that failed)
    collected: bool = False
    created_at: float = Field(default_factory=time.time)

    @property
    def live(self) -> bool:
        return not self.collected


class BatchState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = STATE_FORMAT
    provider: str
    batches: list[BatchRecord] = Field(default_factory=list)


def load_state(path: Path, provider: str) -> BatchState:
    if not path.exists():
        return BatchState(provider=provider)
    try:
        state = BatchState.model_validate_json(path.read_bytes())
    except (ValidationError, OSError) as exc:
        raise RunError(
            f"{path} is not a batch record ({type(exc).__name__}); its batches may still run at OpenAI: "
            "look them up in the dashboard, then delete the file to start afresh"
        ) from None
    if state.format != STATE_FORMAT:
        raise RunError(f"{path} was written by another version of mmbridge (format {state.format}); use another --out")
    return state


def save_state(path: Path, state: BatchState) -> None:
    with atomic_write(path) as f:
        f.write(state.model_dump_json())
