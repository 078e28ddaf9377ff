"""Build the provider a config names, with its wrappers stacked in the documented order."""

from __future__ import annotations

from .config import Config, ProviderConfig, cascade_thresholds
from .errors import ConfigError
from .provider import Provider
from .registry import build_provider
from .wrappers import Cached, Cascade, Fallback, Limited, Retrying

__all__ = ["build_stack"]


def build_stack(config: Config, name: str | None = None, entry: ProviderConfig | None = None) -> Provider:
    """The provider called ``name`` in ``config`` (or described by ``entry``), ready to call.

    Outermost first: ``Cached(Retrying(Limited(provider)))``, so a hit never waits and each
    attempt takes a concurrency slot. A fallback is cached once, around the retried stacks of
    its members; a cascade's stages are each cached, and its own decision is not.
    """
    if entry is None:
        name, entry = config.provider(name)
    assert name is not None
    provider = _retried(config, name, entry, ())
    if config.cache.enabled:
        provider = Cached(provider, config.cache.dir, ttl_s=config.cache.ttl_s)
    return provider


def _retried(config: Config, name: str, entry: ProviderConfig, seen: tuple[str, ...]) -> Provider:
    if name in seen:
        chain = " -> ".join((*seen, name))
        raise ConfigError(f"{config.source}: providers.{name}: a fallback or cascade cannot include itself ({chain})")
    where = f"{config.source}: providers.{name}"
    if entry.type == "fallback":
        if entry.options:
            raise ConfigError(f"{where}: a fallback takes only providers = [...], got {sorted(entry.options)}")
        members = [_retried(config, m, config.provider(m)[1], (*seen, name)) for m in entry.providers or []]
        return Fallback(members, name=name)
    if entry.type == "cascade":  # each stage cached and retried on its own
        stages = [_retried(config, m, config.provider(m)[1], (*seen, name)) for m in entry.providers or []]
        if config.cache.enabled:
            stages = [Cached(s, config.cache.dir, ttl_s=config.cache.ttl_s) for s in stages]
        return Cascade(stages, thresholds=cascade_thresholds(entry, where), name=name)
    provider = build_provider(entry.type, name, entry.options, where=where)
    if entry.max_concurrency is not None or entry.requests_per_minute is not None:
        provider = Limited(
            provider, max_concurrency=entry.max_concurrency, requests_per_minute=entry.requests_per_minute
        )
    retry = config.retry
    return Retrying(
        provider,
        max_attempts=retry.max_attempts,
        max_wait_s=retry.max_wait_s,
        deadline_s=retry.deadline_s,
        initial_wait_s=retry.initial_wait_s,
    )
