"""``mmbridge ask | caption | verify``: one request from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ProviderOpt = Annotated[
    str | None, typer.Option("--provider", "-p", help="Provider name from the config, or a provider type.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Config file (default: $MMBRIDGE_CONFIG, ./mmbridge.toml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the whole response as JSON.")]


def _run(method: str, provider: str | None, config: Path | None, as_json: bool, *args: Any) -> None:
    from ..client import Client
    from ..types import Task

    with Client.from_config(config, provider) as client:
        response = getattr(client, method)(*args)
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    if response.task is Task.VERIFY and response.label is not None:
        typer.echo("true" if response.label else "false")
    elif response.task is Task.VQA and response.answer is not None:
        typer.echo(response.answer)
    else:
        typer.echo(response.text)


def register(app: typer.Typer) -> None:
    @app.command()
    def ask(
        image: Annotated[str, typer.Argument(help="Image path, data: URL or http(s) URL.")],
        question: Annotated[str, typer.Argument(help="The question about the image.")],
        choices: Annotated[str | None, typer.Option(help="Comma-separated closed answer set.")] = None,
        provider: ProviderOpt = None,
        config: ConfigOpt = None,
        json: JsonOpt = False,
    ) -> None:
        """Answer a question about an image."""
        options = [c.strip() for c in choices.split(",")] if choices else None
        _run("ask", provider, config, json, image, question, options)

    @app.command()
    def caption(
        image: Annotated[str, typer.Argument(help="Image path, data: URL or http(s) URL.")],
        provider: ProviderOpt = None,
        config: ConfigOpt = None,
        json: JsonOpt = False,
    ) -> None:
        """Describe an image in one sentence."""
        _run("caption", provider, config, json, image)

    @app.command()
    def verify(
        image: Annotated[str, typer.Argument(help="Image path, data: URL or http(s) URL.")],
        statement: Annotated[str, typer.Argument(help="A statement about the image.")],
        provider: ProviderOpt = None,
        config: ConfigOpt = None,
        json: JsonOpt = False,
    ) -> None:
        """Say whether a statement is true of an image (prints true or false)."""
        _run("verify", provider, config, json, image, statement)
