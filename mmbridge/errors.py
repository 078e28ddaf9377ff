"""The one error tree of mmbridge: every failure a user can see is one of these.

    MMBridgeError
    ├── ConfigError                  a config file, option or environment variable is wrong
    ├── ImageError                   an input could not be turned into an RGB image
    ├── RequestError                 a request is malformed (a vqa request without a question, say)
    ├── DatasetError                 a dataset file is malformed or names a missing image
    ├── CacheError                   the answer cache cannot be opened, read or written
    ├── RunError                     an evaluation's --out folder is in use, changed, or holds a bad row
    ├── UnsupportedTaskError         the provider does not do this task
    ├── ProviderNotInstalledError    the provider's package or a dependency is missing
    └── ProviderError                the provider was asked and did not answer
        ├── ProviderTimeoutError     no answer within the timeout
        ├── ProviderConnectionError  the connection failed or dropped
        ├── ProviderResponseError    an answer arrived but could not be read (malformed JSON, say)
        ├── BatchError               a Batch API batch failed validation, expired or was cancelled first
        └── HTTPStatusError          the server answered with an error status
            ├── AuthenticationError  401 / 403: the key is wrong or lacks permission
            └── RateLimitError       429: slow down (``insufficient_quota``: top up, do not retry)

Messages are one line, say what to do, and never carry secrets.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BatchError",
    "CacheError",
    "ConfigError",
    "DatasetError",
    "HTTPStatusError",
    "ImageError",
    "MMBridgeError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotInstalledError",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "RateLimitError",
    "RequestError",
    "RunError",
    "UnsupportedTaskError",
]


class MMBridgeError(Exception):
    """Base of every error mmbridge raises on purpose."""


class ConfigError(MMBridgeError):
    """A config file, a provider option or an environment variable is invalid."""


class ImageError(MMBridgeError):
    """An input could not be decoded into an RGB image."""


class RequestError(MMBridgeError, ValueError):
    """A request's fields do not fit its task."""


class DatasetError(MMBridgeError):
    """A dataset file is malformed, or a sample names an image that does not exist."""


class CacheError(MMBridgeError):
    """The answer cache's folder or database is unusable: corrupt, truncated, read-only, not a folder."""


class RunError(MMBridgeError):
    """An evaluation's output folder cannot be used as asked: another run writes to it, it measured
    something else (another provider identity or other samples), or a results line is corrupt."""


class UnsupportedTaskError(MMBridgeError):
    """A provider was asked for a task it does not declare in its capabilities."""

    def __init__(self, provider: str, task: str, supported: frozenset[str] | set[str]) -> None:
        self.provider, self.task = provider, task
        self.supported = frozenset(supported)
        tasks = ", ".join(sorted(self.supported)) or "none"
        super().__init__(f"provider {provider!r} does not support task {task!r} (it supports: {tasks})")


class ProviderNotInstalledError(MMBridgeError):
    """A provider type is unknown, or its package or one of its dependencies is missing."""

    def __init__(self, message: str, *, install: str | None = None) -> None:
        self.install = install
        super().__init__(f"{message}; fix: {install}" if install else message)


class ProviderError(MMBridgeError):
    """The provider was called and failed to produce an answer."""

    #: whether trying the same request again may succeed
    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        self.provider = provider
        super().__init__(f"{provider}: {message}" if provider else message)


class ProviderTimeoutError(ProviderError):
    """No answer arrived within the timeout."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """The connection could not be made, or it dropped before the answer."""

    retryable = True


class ProviderResponseError(ProviderError):
    """The server answered, but the answer could not be read (malformed JSON, missing fields)."""


class BatchError(ProviderError):
    """A request sent in a batch got no answer: the batch failed validation, expired or was cancelled."""

    retryable = True  # a rerun submits it again

    def __init__(self, message: str, *, code: str | None = None, provider: str | None = None) -> None:
        #: the Batch API's code, e.g. "token_limit_exceeded", "batch_expired"
        self.code = code
        super().__init__(message, provider=provider)


class HTTPStatusError(ProviderError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        provider: str | None = None,
        retry_after_s: float | None = None,
        code: str | None = None,
    ) -> None:
        self.status_code = status_code
        #: the wait the server asked for (from retry-after-ms / retry-after), if any
        self.retry_after_s = retry_after_s
        #: the machine-readable error code of the body, e.g. "insufficient_quota"
        self.code = code
        super().__init__(f"HTTP {status_code}: {message}", provider=provider)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status_code in (408, 409, 429) or self.status_code >= 500


class AuthenticationError(HTTPStatusError):
    """401 or 403: the API key is missing, wrong, or lacks permission."""


class RateLimitError(HTTPStatusError):
    """429: too many requests, or (code ``insufficient_quota``) no credit left."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.code != "insufficient_quota"
