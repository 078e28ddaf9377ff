"""Providers that wrap providers: cross-cutting behaviour stacked around any backend."""

from .fallback import Fallback
from .limited import Limited

__all__ = ["Fallback", "Limited"]
