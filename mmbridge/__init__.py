"""mmbridge: one interface over local and hosted vision-language models.

Names load on first use, so ``import mmbridge`` stays cheap and pulls in neither torch nor openai.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BaseProvider",
    "CacheError",
    "Cached",
    "Client",
    "Config",
    "ConfigError",
    "DatasetError",
    "Fallback",
    "HTTPStatusError",
    "Image",
    "ImageError",
    "Limited",
    "MMBridgeError",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotInstalledError",
    "ProviderPlugin",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Request",
    "RequestError",
    "Response",
    "RunError",
    "Retrying",
    "Task",
    "UnsupportedTaskError",
    "Usage",
    "WrapperProvider",
    "cache_mode",
    "list_providers",
    "load_config",
]

_HOMES = {
    ".client": ("Client",),
    ".config": ("Config", "load_config"),
    ".image": ("Image",),
    ".provider": ("BaseProvider", "Provider", "WrapperProvider"),
    ".registry": ("ProviderPlugin", "list_providers"),
    ".types": ("Request", "Response", "Task", "Usage"),
    ".wrappers": ("Cached", "Fallback", "Limited", "Retrying", "cache_mode"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

if TYPE_CHECKING:
    from .client import Client
    from .config import Config, load_config
    from .errors import (
        AuthenticationError,
        CacheError,
        ConfigError,
        DatasetError,
        HTTPStatusError,
        ImageError,
        MMBridgeError,
        ProviderConnectionError,
        ProviderError,
        ProviderNotInstalledError,
        ProviderResponseError,
        ProviderTimeoutError,
        RateLimitError,
        RequestError,
        RunError,
        UnsupportedTaskError,
    )
    from .image import Image
    from .provider import BaseProvider, Provider, WrapperProvider
    from .registry import ProviderPlugin, list_providers
    from .types import Request, Response, Task, Usage
    from .wrappers import Cached, Fallback, Limited, Retrying, cache_mode


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'mmbridge' has no attribute {name!r}")
    module = importlib.import_module(_MODULE_OF.get(name, ".errors"), __name__)
    value = getattr(module, name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
