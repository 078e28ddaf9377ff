"""``mmbridge batch status DIR`` and ``mmbridge batch cancel DIR``: an evaluation's Batch API batches."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

DirArg = Annotated[Path, typer.Argument(help="The --out folder of an `mmbridge eval --batch` run.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="The config file the run used.")]


async def _rows(out: Path, config: Path | None, cancel: bool) -> list[dict[str, Any]]:
    from ..client import Client
    from ..config import load_config
    from ..errors import RunError
    from ..eval.offline import offline_layer
    from ..offline import OFFLINE_FOLDER

    folder = out / OFFLINE_FOLDER
    names = sorted(p.stem for p in folder.glob("*.json"))
    if not names:
        raise RunError(f"{out} holds no batches; they are made by `mmbridge eval --batch --out {out}`")
    loaded = load_config(config)
    rows: list[dict[str, Any]] = []
    for name in names:
        client = Client(name, config=loaded)
        try:
            layer = offline_layer(client)
            if layer is None:
                raise RunError(f"provider {name!r} in {loaded.source} has no batches; give the config the run used")
            rows += await layer.offline_status(folder, cancel=cancel)
        finally:
            await client.aclose()
    return rows


def _show(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("provider", "batch", "status", "requests", "done", "failed", "in samples.jsonl")
    for row in rows:
        table.add_row(
            row["provider"],
            row["batch"],
            row["status"],
            f"{row['requests']:,}",
            f"{row['done']:,}",
            f"{row['failed']:,}",
            "yes" if row["collected"] else "no",
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    batch_app = typer.Typer(help="Inspect or cancel the Batch API batches of an eval run.", no_args_is_help=True)
    app.add_typer(batch_app, name="batch")

    @batch_app.command("status")
    def status(out: DirArg, config: ConfigOpt = None) -> None:
        """Each batch of the run as the service reports it now."""
        _show(asyncio.run(_rows(out, config, cancel=False)))

    @batch_app.command("cancel")
    def cancel(out: DirArg, config: ConfigOpt = None) -> None:
        """Cancel the run's batches that are still running; rerun the eval to collect what they finished."""
        _show(asyncio.run(_rows(out, config, cancel=True)))
