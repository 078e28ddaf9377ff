"""``mmbridge providers`` and ``mmbridge config check``: what is installed and whether the config holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def providers() -> None:
        """List provider types: installed, missing a dependency, or not installed (with the fix)."""
        from rich.console import Console
        from rich.table import Table

        from ..registry import list_providers

        table = Table("type", "package", "status", "tasks", "notes")
        colors = {"ready": "green", "missing dependency": "yellow", "not installed": "dim", "broken": "red"}
        for row in list_providers():
            notes = row.install or row.description
            table.add_row(
                row.type,
                row.package,
                f"[{colors[row.status]}]{row.status}[/]",
                ", ".join(sorted(row.tasks)),
                notes,
            )
        Console().print(table)

    config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("check")
    def check(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file to check.")] = None,
    ) -> None:
        """Validate the config file and every provider it names; exit 2 on a problem."""
        import sys

        from ..config import check_config, load_config

        loaded = load_config(config)
        problems = check_config(loaded)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            raise typer.Exit(2)
        names = ", ".join(sorted(loaded.all_providers()))
        typer.echo(f"ok: {loaded.source} (default provider: {loaded.default}; providers: {names})")
