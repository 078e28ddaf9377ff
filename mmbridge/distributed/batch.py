"""ray_batch: ``Client.batch`` on a Ray cluster, for work outside an evaluation."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from ..client import Client
from ..config import Config, load_config
from ..errors import ProviderError
from ..offline import find_layer
from ..types import Request, Response
from ..wrappers.cache import Cached
from .executor import Pictures, answer_on_ray, work_row
from .options import RayOptions

__all__ = ["WorkerError", "ray_batch"]


class WorkerError(ProviderError):
    """A request failed on a Ray worker; ``type`` is the name of the error it raised there."""

    def __init__(self, type_name: str, message: str) -> None:
        self.type = type_name
        super().__init__(f"{type_name}: {message}")


def _picture_bytes(request: Request) -> bytes:
    """The picture as a file's bytes: the original ones when it was a PNG, JPEG or WebP file."""
    return base64.b64decode(request.image.to_data_url().split(",", 1)[1])


def ray_batch(
    requests: Iterable[Request | Mapping[str, Any]],
    provider: str | None = None,
    *,
    config: Config | None = None,
    options: RayOptions | None = None,
) -> list[Response | Exception]:
    """Answer ``requests`` with the provider ``config`` names, on Ray; results in input order, a failed
    item as its exception. Cache hits are answered here, and new answers kept in the cache."""
    config = config if config is not None else load_config()
    options = options or RayOptions()
    with Client(provider, config=config) as client:
        name = provider or config.default
        normalized = [client.request(r) for r in requests]
        results: list[Response | Exception] = [WorkerError("Missing", "no answer came back")] * len(normalized)
        cached = find_layer(client.provider, Cached)
        work, where = [], []
        pictures = Pictures(options)
        for index, request in enumerate(normalized):
            hit = cached.find(request) if cached is not None else None
            if hit is not None:
                results[index] = hit
            else:
                work.append(work_row(len(where), name, request, pictures.add(_picture_bytes(request))))
                where.append(index)
        for result in answer_on_ray(config, [name], work, pictures, options, {}):
            index = where[result["i"]]
            if result["response"]:
                response = Response.model_validate_json(result["response"])
                if cached is not None:
                    cached.put(normalized[index], response)
                results[index] = response
            else:
                results[index] = WorkerError(result["error_type"], result["error_message"])
        return results
