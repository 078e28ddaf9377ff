"""Provider plugins: discovered through the entry-point group ``mmbridge.providers``.

An entry point names a :class:`ProviderPlugin` in a light module: importing it must not import
torch, openai or any other heavy library. The heavy module is named by ``factory`` and imported
only when a provider is built.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError, ProviderNotInstalledError
from .provider import Provider
from .types import Task

__all__ = ["GROUP", "ProviderInfo", "ProviderPlugin", "build_provider", "list_providers", "load_plugin"]

GROUP = "mmbridge.providers"
#: first-party providers that live in their own distributions, for install hints
KNOWN_PACKAGES = {"hf": "mmbridge-hf", "openai": "mmbridge-openai", "torch": "mmbridge-torch"}


@dataclass(frozen=True)
class ProviderPlugin:
    """What a ``mmbridge.providers`` entry point points at."""

    #: ``"module:callable"``; called as ``callable(name, options)`` and returns a Provider
    factory: str
    #: a pydantic model of the provider's options (validated before anything heavy is imported)
    options: type[BaseModel]
    description: str = ""
    tasks: frozenset[Task] = frozenset(Task)
    #: modules that must be importable to build the provider, e.g. ("openai",)
    requires: tuple[str, ...] = ()
    #: the distribution that ships this provider, for install hints
    package: str = "mmbridge"


@dataclass(frozen=True)
class ProviderInfo:
    """One row of ``mmbridge providers``."""

    type: str
    package: str
    status: str  # "ready" | "missing dependency" | "not installed" | "broken"
    description: str = ""
    tasks: frozenset[Task] = frozenset()
    install: str | None = None


def install_command(package: str) -> str:
    """The pip command that installs ``package``: from this source checkout when there is one."""
    short = package.removeprefix("mmbridge-")
    checkout = Path(__file__).resolve().parent.parent / "providers" / short
    if (checkout / "pyproject.toml").is_file():
        return f"pip install {checkout}"
    return f"pip install {package}"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _missing(plugin: ProviderPlugin) -> list[str]:
    return [module for module in plugin.requires if importlib.util.find_spec(module) is None]


def load_plugin(provider_type: str) -> ProviderPlugin:
    """The plugin registered as ``provider_type``, or a ProviderNotInstalledError saying how to get it."""
    found = _entry_points()
    ep = found.get(provider_type)
    if ep is None:
        if provider_type in KNOWN_PACKAGES:
            package = KNOWN_PACKAGES[provider_type]
            raise ProviderNotInstalledError(
                f"provider type {provider_type!r} needs the package {package}", install=install_command(package)
            )
        known = ", ".join(sorted(set(found) | set(KNOWN_PACKAGES)))
        raise ProviderNotInstalledError(f"unknown provider type {provider_type!r}; known types: {known}")
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken third-party package must not take the registry down
        raise ProviderNotInstalledError(
            f"provider type {provider_type!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(plugin, ProviderPlugin):
        raise ProviderNotInstalledError(
            f"entry point {provider_type!r} ({ep.value}) is not a mmbridge.registry.ProviderPlugin"
        )
    return plugin


def validate_options(plugin: ProviderPlugin, options: dict[str, Any], where: str) -> BaseModel:
    """Validate a provider's options, raising ConfigError that names the key and what is allowed."""
    try:
        return plugin.options.model_validate(options)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where, plugin.options)) from None


def describe_validation_error(exc: ValidationError, where: str, model: type[BaseModel]) -> str:
    """One line: where, which key, what is wrong, and what is allowed."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        section: type[BaseModel] | None = model
        for part in err["loc"][:-1]:  # descend to the table that has the unknown key
            field = section.model_fields.get(str(part)) if section else None
            annotation = field.annotation if field else None
            section = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        allowed = ", ".join(sorted(section.model_fields)) if section else "see the README"
        return f"{where}: unknown key {key!r}; allowed keys: {allowed}"
    if err["type"] == "missing":
        return f"{where}: missing required key {key!r}"
    return f"{where}: {key}: {err['msg']} (got {err.get('input')!r})"


def build_provider(provider_type: str, name: str, options: dict[str, Any], where: str | None = None) -> Provider:
    """Build a provider of ``provider_type`` called ``name`` from raw options."""
    plugin = load_plugin(provider_type)
    validated = validate_options(plugin, options, where or f"provider {name!r}")
    missing = _missing(plugin)
    if missing:
        raise ProviderNotInstalledError(
            f"provider type {provider_type!r} needs {', '.join(missing)}, which is not installed",
            install=install_command(plugin.package),  # the package's own requirements bring the dependency
        )
    module_name, _, attr = plugin.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(name, validated)


def list_providers() -> list[ProviderInfo]:
    """Every registered provider type, plus the first-party ones that are not installed."""
    rows: list[ProviderInfo] = []
    found = _entry_points()
    for type_name, ep in sorted(found.items()):
        package = ep.dist.name if ep.dist is not None else "?"
        try:
            plugin = load_plugin(type_name)
        except ProviderNotInstalledError as exc:
            rows.append(ProviderInfo(type_name, package, "broken", str(exc)))
            continue
        missing = _missing(plugin)
        rows.append(
            ProviderInfo(
                type_name,
                package,
                "missing dependency" if missing else "ready",
                plugin.description,
                plugin.tasks,
                install_command(plugin.package) if missing else None,
            )
        )
    for type_name, package in sorted(KNOWN_PACKAGES.items()):
        if type_name not in found:
            rows.append(ProviderInfo(type_name, package, "not installed", install=install_command(package)))
    return rows
