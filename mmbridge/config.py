"""mmbridge.toml: where it is found, what it may say, and the built-in default when there is none."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from .bounds import Concurrency, Count, Lifetime, Number, Seconds
from .errors import ConfigError
from .registry import describe_validation_error
from .types import Task

__all__ = ["CacheConfig", "Config", "ImagesConfig", "ProviderConfig", "RetryConfig", "load_config"]

CONFIG_ENV = "MMBRIDGE_CONFIG"
PROVIDER_ENV = "MMBRIDGE_PROVIDER"
DEFAULT_FILE = "mmbridge.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(_Section):
    dir: Path = Path(".mmbridge/cache")
    enabled: bool = True
    #: seconds an entry lives; None keeps it until cleared
    ttl_s: Lifetime | None = None


class RetryConfig(_Section):
    max_attempts: Count(1, 100) = 5
    #: the longest single wait, including one a server asks for with Retry-After
    max_wait_s: Seconds = 60.0
    #: give up rather than wait past this many seconds since the first attempt
    deadline_s: Seconds | None = None
    #: the scale of the exponential backoff (full jitter): waits grow from about this
    initial_wait_s: Seconds = 0.5


class ImagesConfig(_Section):
    max_pixels: Count(1, 1_000_000_000) = 50_000_000
    remote_max_bytes: Count(1, 10_000_000_000) = 20_000_000
    remote_timeout_s: Seconds = 10.0


class ProviderConfig(BaseModel):
    """One ``[providers.NAME]`` table: ``type`` picks the plugin, the other keys are its options.

    ``max_concurrency`` and ``requests_per_minute`` apply to any provider (the ``Limited`` wrapper);
    ``type = "fallback"`` with ``providers = [...]`` tries the named providers in order;
    ``type = "cascade"`` with ``providers`` and ``thresholds = {vqa = 0.9}`` asks the next one only
    when an answer's confidence is below its task's threshold (``wrappers.Cascade``).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    max_concurrency: Concurrency | None = None
    requests_per_minute: Number(0, 10_000_000, above=True) | None = None
    providers: list[str] | None = None

    @property
    def options(self) -> dict[str, Any]:
        """The keys meant for the provider plugin itself."""
        return dict(self.model_extra or {})


_BUILTIN_PROVIDERS = {
    "fake": ProviderConfig(type="fake"),
    "openai": ProviderConfig(type="openai", model="gpt-4o-mini"),
    "local": ProviderConfig(type="torch", checkpoint="builtin:shapes"),
}


class Config(_Section):
    """The whole configuration; every field has a default, so no file is needed."""

    default: str = "fake"
    allow_remote_images: bool = False
    images: ImagesConfig = ImagesConfig()
    cache: CacheConfig = CacheConfig()
    retry: RetryConfig = RetryConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        """Where this config came from, for messages."""
        return str(self._source) if self._source else "built-in default config"

    def all_providers(self) -> dict[str, ProviderConfig]:
        """Built-in provider entries overlaid with the file's own."""
        return {**_BUILTIN_PROVIDERS, **self.providers}

    def provider(self, name: str | None = None) -> tuple[str, ProviderConfig]:
        """The named provider entry; a bare type name (``fake``, ``openai``...) works without one."""
        name = name or self.default
        entries = self.all_providers()
        if name in entries:
            return name, entries[name]
        return name, ProviderConfig(type=name)


def cascade_thresholds(entry: ProviderConfig, where: str) -> dict[Task, float]:
    """A cascade's ``thresholds = {vqa = 0.9, ...}``, checked: task names, numbers within 0..1."""
    extra = sorted(set(entry.options) - {"thresholds"})
    if extra:
        raise ConfigError(f"{where}: a cascade takes providers and thresholds only, got {extra}")
    given = entry.options.get("thresholds", {})
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: thresholds must be a table such as {{vqa = 0.9, verify = 0.95}}")
    out: dict[Task, float] = {}
    for task, value in given.items():
        if task not in {t.value for t in Task}:
            raise ConfigError(f"{where}: thresholds.{task}: not a task; use {', '.join(t.value for t in Task)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"{where}: thresholds.{task} must be a number within 0..1, got {value!r}")
        out[Task(task)] = float(value)
    return out


def _find(path: str | os.PathLike[str] | None) -> Path | None:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigError(f"config file {found} does not exist; check the path given to --config")
        return found
    env = os.environ.get(CONFIG_ENV)
    if env:
        found = Path(env)
        if not found.is_file():
            raise ConfigError(f"${CONFIG_ENV} points at {found}, which does not exist; unset it or fix the path")
        return found
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else None


def parse_config(data: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a config mapping, raising ConfigError that names the file and the key."""
    where = str(source) if source else "config"
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where, Config)) from None
    for name, entry in config.providers.items():
        if entry.type == "fallback" and not entry.providers:
            raise ConfigError(f'{where}: providers.{name}: a fallback needs providers = ["a", "b"]')
        if entry.type == "cascade":
            if len(entry.providers or []) < 2:
                raise ConfigError(f'{where}: providers.{name}: a cascade needs providers = ["cheap", "strong"]')
            cascade_thresholds(entry, f"{where}: providers.{name}")
    if source is not None:
        config._source = source
        if not config.cache.dir.is_absolute():  # relative to the file, not to where mmbridge runs
            config = config.model_copy(
                update={"cache": config.cache.model_copy(update={"dir": source.parent / config.cache.dir})}
            )
            config._source = source
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read ``path``, else ``$MMBRIDGE_CONFIG``, else ``./mmbridge.toml``, else the built-in default."""
    found = _find(path)
    data: dict[str, Any] = {}
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{found}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{found}: cannot read it: {exc}") from None
    override = os.environ.get(PROVIDER_ENV)
    if override:
        data["default"] = override
    return parse_config(data, found)


def check_config(config: Config) -> list[str]:
    """Problems that would stop a provider from being built: the default and every file entry.

    Checks options against each plugin's schema without importing the heavy backend.
    """
    from .errors import MMBridgeError
    from .registry import load_plugin, validate_options

    problems: list[str] = []
    names = dict.fromkeys([*config.providers, config.default])
    for name in names:
        name, entry = config.provider(name)
        where = f"{config.source}: providers.{name}"
        try:
            if entry.type in ("fallback", "cascade"):
                missing = [m for m in entry.providers or [] if m not in config.all_providers()]
                if missing:
                    problems.append(f"{where}: {entry.type} member(s) {', '.join(missing)} are not defined")
                continue
            validate_options(load_plugin(entry.type), entry.options, where)
        except MMBridgeError as exc:
            problems.append(str(exc) if str(exc).startswith(str(config.source)) else f"{where}: {exc}")
    return problems
