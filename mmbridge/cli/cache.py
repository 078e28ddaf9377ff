"""``mmbridge cache stats`` and ``mmbridge cache clear``: look into and empty the answer cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Config file (its [cache] dir is used).")]


def _open(config: Path | None):  # noqa: ANN202 - diskcache is imported lazily
    from ..config import load_config
    from ..wrappers.cache import open_store

    directory = load_config(config).cache.dir
    return directory, open_store(directory)


def register(app: typer.Typer) -> None:
    cache_app = typer.Typer(help="Inspect or clear the answer cache.", no_args_is_help=True)
    app.add_typer(cache_app, name="cache")

    @cache_app.command("stats")
    def stats(config: ConfigOpt = None) -> None:
        """Show where the cache is, how many answers it holds and its size on disk."""
        from ..wrappers.cache import guarded

        directory, store = _open(config)
        with store, guarded(directory, "read"):
            keys = list(store.iterkeys())
            aliases = sum(1 for k in keys if str(k).startswith("source:"))
            typer.echo(f"directory: {directory}")
            typer.echo(f"answers:   {len(keys) - aliases}")
            typer.echo(f"images:    {aliases} file hashes remembered (lets a hit skip decoding)")
            typer.echo(f"size:      {store.volume() / 1e6:.2f} MB")

    @cache_app.command("clear")
    def clear(config: ConfigOpt = None) -> None:
        """Delete every cached answer."""
        from ..wrappers.cache import guarded

        directory, store = _open(config)
        with store, guarded(directory, "clear"):
            removed = store.clear()
        typer.echo(f"removed {removed} entries from {directory}")
