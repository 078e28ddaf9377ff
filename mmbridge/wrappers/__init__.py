"""Providers that wrap providers: cross-cutting behaviour stacked around any backend."""

from .cache import Cached, cache_mode
from .cascade import Cascade
from .fallback import Fallback
from .limited import Limited
from .retry import Retrying

__all__ = ["Cached", "Cascade", "Fallback", "Limited", "Retrying", "cache_mode"]
