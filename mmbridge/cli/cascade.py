"""``mmbridge cascade fit``: evaluate two providers on a validation set and choose cascade thresholds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from ..bounds import Fraction, Limit, Seed, Usd
from .bounded import option


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Cascades: a cheap provider when it is sure, a stronger one when it is not.")
    app.add_typer(group, name="cascade")

    @group.command("fit")
    def fit(
        provider: Annotated[list[str], typer.Option("--provider", "-p", help="The first stage, then the next.")],
        dataset: Annotated[str, typer.Option(help="Validation data (the thresholds are chosen on it).")],
        out: Annotated[Path, typer.Option(help="Folder of the evaluation (resumed if it is there).")],
        target_accuracy: Annotated[
            float | None, option(Fraction, help="Cheapest thresholds reaching this accuracy.")
        ] = None,
        budget_usd: Annotated[
            float | None, option(Usd, help="Most accurate thresholds within this cost per 1,000 samples.")
        ] = None,
        name: Annotated[str, typer.Option(help="Name of the cascade in the printed config table.")] = "cascade",
        limit: Annotated[int | None, option(Limit, help="At most this many samples per task.")] = None,
        seed: Annotated[int, option(Seed, help="Seed of the sample choice.")] = 0,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
    ) -> None:
        """Evaluate (or reuse OUT's rows), sweep the thresholds per task, print the config to paste."""
        from rich.console import Console
        from rich.table import Table

        from ..atomic import atomic_write
        from ..config import load_config
        from ..errors import ProviderError
        from ..eval.cascade_fit import fit_thresholds, toml_table
        from ..eval.evaluate import evaluate
        from ..eval.rows import read_rows
        from ..eval.rundir import FIT_FILE
        from ..eval.summary import failed_providers

        if len(provider) != 2:
            raise typer.BadParameter("give two providers: --provider CHEAP --provider STRONG")
        if (target_accuracy is None) == (budget_usd is None):
            raise typer.BadParameter("give one of --target-accuracy and --budget-usd")
        summary = asyncio.run(evaluate(provider, dataset, out, limit=limit, seed=seed, config=load_config(config)))
        if failed := failed_providers(summary):
            raise ProviderError(
                f"every call to {', '.join(failed)} failed (the error rows in {out / 'samples.jsonl'} say why); "
                "fix it and rerun cascade fit"
            )
        fitted = fit_thresholds(
            read_rows(out / "samples.jsonl"),
            provider[0],
            provider[1],
            target_accuracy=target_accuracy,
            budget_per_1000=budget_usd,
            seed=seed,
        )
        with atomic_write(out / FIT_FILE) as f:  # for `mmbridge view`, which marks the points on the curve
            json.dump({"first": provider[0], "then": provider[1], "tasks": fitted}, f, indent=2)
        console = Console()
        if not fitted:
            console.print(f"{provider[0]} reported no confidences on {dataset}: there is no threshold to fit")
            raise typer.Exit(1)
        table = Table("task", "threshold", "accuracy [95% CI]", "cost / 1,000", f"{provider[0]} answers", "goal met")
        for task, f in fitted.items():
            low, high = f["ci95"]
            table.add_row(
                task,
                "never stop early" if f["threshold"] is None else f"{f['threshold']:.4g}",
                f"{f['accuracy']:.3f} [{low:.3f}, {high:.3f}]",
                f"${f['cost_per_1000']:.4f}",
                f"{f['local_share']:.1%}",
                "yes" if f["met"] else "no (closest shown)",
            )
        console.print(table)
        console.print("paste into mmbridge.toml:\n")
        console.print(toml_table(name, provider[0], provider[1], fitted), markup=False, highlight=False)
