"""summary.json as a typed model: written through it, read back through it (this version's and the
previous one's), rendered from it by the reports.

Schema ``mmbridge.eval.summary/3`` has the keys of ``/2`` and, per provider, ``service_s`` (the
provider's own time per answer, apart from time spent queued) and ``answers_per_s`` (empty when a
``/2`` file is read). ``/2`` has the keys of ``/1``; ``reasked_errors`` and each provider's ``batch``
are always present (in ``/1`` only evaluate() added them, so they default when a ``/1`` file is read).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import RunError

__all__ = [
    "SCHEMA",
    "Cascade",
    "CascadePoint",
    "Metric",
    "Pair",
    "ProviderSummary",
    "Summary",
    "TaskSummary",
    "read_summary",
]

SCHEMA = "mmbridge.eval.summary/3"
#: the versions this one reads
READABLE = (SCHEMA, "mmbridge.eval.summary/2", "mmbridge.eval.summary/1")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Part):
    """A metric's value with its 95% bootstrap interval (None where it cannot be computed)."""

    value: float | None
    ci95: tuple[float | None, float | None] = (None, None)


class TypeBreakdown(_Part):
    n: int
    metrics: dict[str, Metric]


class TaskSummary(_Part):
    n: int
    answered: int
    errors: int
    error_rate: float | None
    unparsed: int
    unsupported: bool
    metrics: dict[str, Metric]
    by_type: dict[str, TypeBreakdown]
    #: ECE of the reported confidences; None without them
    calibration_error: float | None = None


class Latency(_Part):
    p50: float | None = None
    p95: float | None = None
    mean: float | None = None


class Tokens(_Part):
    input: int = 0
    output: int = 0


class ProviderSummary(_Part):
    tasks: dict[str, TaskSummary]
    #: seconds from the call to the answer as this run drove the provider: queueing included
    latency_s: Latency
    #: seconds the provider itself spent per answer (for a batched model, its batch's time); cache
    #: hits left out
    service_s: Latency = Latency()
    #: answers a second while this run asked it (cache hits and the pauses between resumed runs left out)
    answers_per_s: float | None = None
    tokens: Tokens
    cost_usd: float | None
    cost_per_1000: float | None
    #: answered through the Batch API, at its prices
    batch: bool = False

    @property
    def answered_nothing(self) -> bool:
        """It answered no sample, and failed at least once: a bad key, a dead server."""
        tasks = self.tasks.values()
        return not any(t.answered for t in tasks) and any(t.errors for t in tasks)


class Pair(_Part):
    a: str
    b: str
    task: str
    metric: str
    n: int
    diff: float
    ci95: tuple[float, float]
    p_value: float
    test: str


class CascadePoint(_Part):
    threshold: float | None
    accuracy: float
    cost_per_1000: float
    local_share: float


class Single(_Part):
    accuracy: float
    cost_per_1000: float


class Coverage(_Part):
    share: float
    threshold: float | None


class Cascade(_Part):
    """What ``first`` then ``then`` would score and cost on one task (see ``eval.cascade``)."""

    first: str
    then: str
    task: str
    n: int
    points: list[CascadePoint]
    single: dict[str, Single]
    matches_best: CascadePoint | None
    coverage_at_1pct_risk: Coverage


class Summary(_Part):
    schema_: str = Field(default=SCHEMA, alias="schema")
    dataset: str
    seed: int
    samples: int
    providers: dict[str, ProviderSummary]
    pairs: list[Pair] = Field(default_factory=list)
    cascades: list[Cascade] = Field(default_factory=list)
    #: error rows of an earlier run asked again
    reasked_errors: int = 0

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def tasks(self) -> list[str]:
        return sorted({t for p in self.providers.values() for t in p.tasks})

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def read_summary(path: Path) -> Summary:
    """A summary.json of this version or the previous one; anything else is a RunError naming it."""
    try:
        data = Summary.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise RunError(f"{path} is not a summary mmbridge can read ({type(exc).__name__}); rerun the eval") from None
    if data.schema_ not in READABLE:
        raise RunError(f"{path} has schema {data.schema_!r}; this mmbridge reads {', '.join(READABLE)}")
    return data.model_copy(update={"schema_": SCHEMA})
