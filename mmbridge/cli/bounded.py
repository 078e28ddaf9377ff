"""CLI options read through the shared bounds of ``mmbridge.bounds``."""

from __future__ import annotations

from typing import Any

import typer

from ..bounds import check, words


def option(kind: Any, *names: str, help: str | None = None, **more: Any) -> Any:  # noqa: A002
    """A ``typer.Option`` read through ``kind``: refused in one line naming the bound, shown in --help."""

    def parse(text: str) -> Any:
        try:
            return check(kind, text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    shown = f"{help} " if help else ""
    return typer.Option(*names, parser=parse, help=f"{shown}[{words(kind)}]", **more)
