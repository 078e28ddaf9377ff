"""``mmbridge view``: browse and compare the evaluation runs in a folder, in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .bounded import option
from .serve import Port


def register(app: typer.Typer) -> None:
    @app.command()
    def view(
        folder: Annotated[Path, typer.Argument(help="Folder searched for runs (and its sub-folders).")] = Path("."),
        host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
        port: Annotated[int, option(Port, help="Port; 0 picks a free one.")] = 8765,
    ) -> None:
        """Open every run under FOLDER in a local web app: runs list, samples, two runs compared. Read-only."""
        from ..errors import ConfigError, ProviderNotInstalledError

        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder; give the folder that holds your --out folders")
        try:
            from ..view.run import view as run
        except ImportError:
            raise ProviderNotInstalledError(
                "mmbridge view needs fastapi and uvicorn", install="pip install 'mmbridge[serve]'"
            ) from None
        if host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"warning: the viewer has no login; anyone who can reach {host} can read these runs", err=True)
        run(
            folder, host=host, port=port, ready=lambda url: typer.echo(f"viewing {folder.resolve()} at {url}", err=True)
        )
