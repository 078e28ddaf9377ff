"""``mmbridge train``: train the local model (needs mmbridge-torch) with a live progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        data: Annotated[str, typer.Option(help="Training data: a .jsonl file or builtin:shapes?split=train&...")],
        out: Annotated[Path, typer.Option(help="Folder for the best/ and last/ checkpoints.")],
        val: Annotated[
            str | None, typer.Option(help="Validation data, checked every --validate-every seconds.")
        ] = None,
        epochs: Annotated[int, typer.Option(min=1)] = 30,
        max_minutes: Annotated[
            float | None, typer.Option(min=0.1, help="Stop after this long (the LR schedule fits it).")
        ] = None,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
        seed: Annotated[int, typer.Option()] = 0,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last after a kill.")] = False,
        batch_images: Annotated[
            int, typer.Option(min=1, help="Images per step (all their questions come along).")
        ] = 32,
        lr: Annotated[float, typer.Option(min=0)] = 1e-3,
        validate_every: Annotated[float, typer.Option(min=1, help="Seconds between validations.")] = 120.0,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the cache dir).")] = None,
    ) -> None:
        """Train the local fused model on any dataset in the project's format."""
        from ..config import load_config
        from ..errors import ProviderNotInstalledError
        from ..registry import install_command

        try:
            from mmbridge_torch.cli import run_training
        except ImportError:
            raise ProviderNotInstalledError(
                "mmbridge train needs mmbridge-torch", install=install_command("mmbridge-torch")
            ) from None
        run_training(
            data=data,
            out=out,
            val=val,
            epochs=epochs,
            max_minutes=max_minutes,
            device=device,
            seed=seed,
            resume=resume,
            batch_images=batch_images,
            lr=lr,
            validate_every_s=validate_every,
            cache_dir=load_config(config).cache.dir,
        )
