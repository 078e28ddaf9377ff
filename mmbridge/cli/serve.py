"""``mmbridge serve``: put a provider behind an OpenAI-compatible API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..bounds import Concurrency, Count, Megabytes, Seconds, Waiting
from .bounded import option

Port = Count(0, 65535)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        provider: Annotated[str, typer.Option("--provider", "-p", help="Provider name from the config, or a type.")],
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
        host: Annotated[str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
        port: Annotated[int, option(Port)] = 8000,
        api_key_env: Annotated[str | None, typer.Option(help="Require 'Authorization: Bearer $VAR'.")] = None,
        max_body_mb: Annotated[float, option(Megabytes, help="Largest request body.")] = 20.0,
        max_concurrency: Annotated[
            int | None, option(Concurrency, help="Requests answered at once [default: the provider's, else 256].")
        ] = None,
        max_waiting: Annotated[
            int, option(Waiting, help="Requests that may wait beyond those; more get 429 + Retry-After.")
        ] = 64,
        read_timeout: Annotated[
            float, option(Seconds, help="Seconds for a request's headers, and then its body, to arrive.")
        ] = 10.0,
        request_timeout: Annotated[
            float, option(Seconds, help="Seconds a request may take once it has arrived (then 504).")
        ] = 120.0,
        shutdown_timeout: Annotated[
            float, option(Seconds, help="On SIGTERM, seconds in-flight requests get to finish.")
        ] = 10.0,
    ) -> None:
        """Serve a provider as /v1/chat/completions, /v1/models and /health (OpenAI wire format)."""
        import logging
        import sys

        from ..client import Client
        from ..errors import ProviderNotInstalledError

        try:
            from ..serve.app import ServeLimits
            from ..serve.run import serve as run
        except ImportError:
            raise ProviderNotInstalledError(
                "mmbridge serve needs fastapi and uvicorn", install="pip install 'mmbridge[serve]'"
            ) from None
        # a plain handler: rendering each request's line with rich cost more than serving it (3.5x fewer req/s)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        client = Client.from_config(config, provider)
        typer.echo(f"serving {provider} at http://{host}:{port}/v1 (models: GET /v1/models)", err=True)
        run(
            client,
            provider,
            host=host,
            port=port,
            api_key_env=api_key_env,
            limits=ServeLimits(
                max_body_bytes=int(max_body_mb * 1_000_000),
                max_concurrency=max_concurrency,
                max_waiting=max_waiting,
                read_timeout_s=read_timeout,
                request_timeout_s=request_timeout,
                shutdown_timeout_s=shutdown_timeout,
            ),
        )
