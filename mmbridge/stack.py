"""Build the provider a config names, with its wrappers stacked in the documented order."""

from __future__ import annotations

from .config import Config, ProviderConfig
from .errors import ConfigError
from .provider import Provider
from .registry import build_provider
from .wrappers import Fallback, Limited

__all__ = ["build_stack"]


def build_stack(
    config: Config, name: str | None = None, entry: ProviderConfig | None = None, *, _seen: tuple[str, ...] = ()
) -> Provider:
    """The provider called ``name`` in ``config`` (or described by ``entry``), ready to call.

    Order, outermost first: ``Limited(provider)``; a fallback wraps the full stacks of its members.
    """
    if entry is None:
        name, entry = config.provider(name)
    assert name is not None
    if name in _seen:
        raise ConfigError(
            f"{config.source}: providers.{name}: a fallback cannot include itself ({' -> '.join((*_seen, name))})"
        )
    where = f"{config.source}: providers.{name}"
    provider: Provider
    if entry.type == "fallback":
        if entry.options:
            raise ConfigError(f"{where}: a fallback takes only providers = [...], got {sorted(entry.options)}")
        provider = Fallback(
            [build_stack(config, member, _seen=(*_seen, name)) for member in entry.providers or []], name=name
        )
    else:
        provider = build_provider(entry.type, name, entry.options, where=where)
    if entry.max_concurrency is not None or entry.requests_per_minute is not None:
        provider = Limited(
            provider, max_concurrency=entry.max_concurrency, requests_per_minute=entry.requests_per_minute
        )
    return provider
