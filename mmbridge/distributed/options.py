"""RayOptions: where the Ray executor runs and how wide."""

from __future__ import annotations

from dataclasses import dataclass

from ..bounds import Concurrency, Devices, check

__all__ = ["RayOptions"]


@dataclass(frozen=True)
class RayOptions:
    #: a running cluster (``ray://host:10001`` or ``host:6379``); None: a local one started for the run
    address: str | None = None
    #: actors in the pool; each builds every provider once (the local model loads once per actor)
    actors: int = 2
    #: CPUs and GPUs each actor reserves (fractions share a core: I/O-bound API work needs little)
    actor_cpus: float = 0.5
    actor_gpus: float = 0.0
    #: rows per block handed to an actor: large enough for the local model's batches
    block_rows: int = 256

    def __post_init__(self) -> None:
        for name in ("actors", "block_rows", "actor_cpus", "actor_gpus"):
            check(Devices if name.startswith("actor_") else Concurrency, getattr(self, name), name)
