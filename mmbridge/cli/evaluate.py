"""``mmbridge eval`` and ``mmbridge demo``: score providers on the same samples and report."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..bounds import Concurrency, Devices, Limit, Seconds, Seed, check
from .bounded import option

DEMO_DATASET = "builtin:shapes?split=test&images=2000"
STAND_IN = "api-standin"
#: exit code of a run that finished, but in which some provider answered nothing (every call failed)
FINISHED_WITH_ERRORS = 3


def _run(
    providers: list[str],
    dataset: str,
    out: Path,
    tasks: str | None,
    limit: int | None,
    concurrency: list[str] | None,
    seed: int,
    config: Path | None,
    restart: bool = False,
    keep_errors: bool = False,
    allow_errors: bool = False,
    extra: dict[str, Any] | None = None,
    batch: dict[str, Any] | None = None,
) -> None:
    from rich.console import Console

    from ..config import ProviderConfig, load_config
    from ..eval.cascade_chart import cascade_sentence
    from ..eval.evaluate import evaluate
    from ..eval.report import terminal_table
    from ..eval.summary import failed_providers

    wanted = {t.strip() for t in tasks.split(",")} if tasks else None
    unknown = (wanted or set()) - {"vqa", "caption", "verify"}
    if unknown:
        raise typer.BadParameter(f"unknown task(s) {', '.join(sorted(unknown))}; use vqa, caption, verify")
    loaded = load_config(config)
    if extra:  # providers the caller adds for this run (the demo's stand-in)
        added = {name: ProviderConfig(**entry) for name, entry in extra.items()}
        loaded = loaded.model_copy(update={"providers": {**loaded.providers, **added}})
    paces = _paces(concurrency or [], providers)
    summary = asyncio.run(
        evaluate(
            providers,
            dataset,
            out,
            tasks=wanted,
            limit=limit,
            concurrency=paces,
            seed=seed,
            config=loaded,
            restart=restart,
            keep_errors=keep_errors,
            **(batch or {}),
        )
    )
    console = Console()
    console.print(terminal_table(summary))
    for cascade in summary.cascades:
        console.print(cascade_sentence(cascade), markup=False, highlight=False)
    console.print(f"report: {(out / 'report.html').resolve()}  (also report.md, summary.json, samples.jsonl)")
    failed = failed_providers(summary)
    if failed and not allow_errors:
        typer.echo(
            f"error: every call to {', '.join(failed)} failed (the error rows in {out / 'samples.jsonl'} say why); "
            "fix it and rerun to ask again, or pass --allow-errors",
            err=True,
        )
        raise typer.Exit(FINISHED_WITH_ERRORS)


def _paces(given: list[str], providers: list[str]) -> dict[str, int] | None:
    """``--concurrency`` values (``N`` for every provider, ``NAME=N`` for one) as {name: N}."""
    paces: dict[str, int] = {}
    for value in given:
        name, _, number = value.rpartition("=")
        if name and name not in providers:
            raise typer.BadParameter(f"--concurrency {value!r}: give N or NAME=N with NAME a --provider")
        try:
            pace = check(Concurrency, number)
        except ValueError as exc:
            raise typer.BadParameter(f"--concurrency {value!r}: {exc}") from None
        for target in [name] if name else [p for p in providers if p not in paces]:
            paces[target] = pace
    return paces or None


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        provider: Annotated[list[str], typer.Option("--provider", "-p", help="A provider to score; repeat for more.")],
        dataset: Annotated[str, typer.Option(help="A .jsonl file, a COCO / VQA v2 .json, or builtin:shapes?...")],
        out: Annotated[Path, typer.Option(help="Folder for samples.jsonl, summary.json, report.md and report.html.")],
        tasks: Annotated[str | None, typer.Option(help="Comma-separated subset of vqa,caption,verify.")] = None,
        limit: Annotated[int | None, option(Limit, help="At most this many samples per task (seeded choice).")] = None,
        concurrency: Annotated[
            list[str] | None,
            typer.Option(
                help="Calls at once: N for every provider, NAME=N for one (repeat) "
                "[default: each provider's max_concurrency or batch size, else 8]."
            ),
        ] = None,
        seed: Annotated[int, option(Seed, help="Seed of the sample choice and the bootstrap.")] = 0,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file.")] = None,
        restart: Annotated[
            bool, typer.Option("--restart", help="Empty --out first, instead of resuming the run in it.")
        ] = False,
        keep_errors: Annotated[
            bool, typer.Option("--keep-errors", help="On a rerun, keep error rows instead of asking them again.")
        ] = False,
        allow_errors: Annotated[
            bool,
            typer.Option("--allow-errors", help="Exit 0 even when a provider answered nothing (default: exit 3 then)."),
        ] = False,
        batch: Annotated[
            bool,
            typer.Option(
                "--batch", help="Send openai providers' requests through the Batch API (half price, within 24 h)."
            ),
        ] = False,
        batch_fallback: Annotated[
            str, typer.Option(help="none: what a batch could not answer stays an error row; sync: ask it now.")
        ] = "none",
        batch_poll: Annotated[
            float | None, option(Seconds, help="Seconds between polls [default: the provider's batch_poll_s].")
        ] = None,
        executor: Annotated[
            str, typer.Option(help="local: this process; ray: a pool of Ray actors (pip install 'mmbridge[ray]').")
        ] = "local",
        ray_address: Annotated[
            str | None,
            typer.Option(help="A running Ray cluster (host:6379 or ray://host:10001) [default: a local one]."),
        ] = None,
        actors: Annotated[int, option(Concurrency, help="Ray actors in the pool.")] = 2,
        actor_cpus: Annotated[float, option(Devices, help="CPUs each Ray actor reserves.")] = 0.5,
        actor_gpus: Annotated[float, option(Devices, help="GPUs each Ray actor reserves.")] = 0.0,
    ) -> None:
        """Score providers on the same samples; rerun the same command to resume a killed run."""
        if batch_fallback not in ("none", "sync"):
            raise typer.BadParameter(f"--batch-fallback {batch_fallback!r}: use none or sync")
        if executor not in ("local", "ray"):
            raise typer.BadParameter(f"--executor {executor!r}: use local or ray")
        options: dict[str, Any] = {"batch": batch, "batch_fallback": batch_fallback, "batch_poll_s": batch_poll}
        if executor == "ray":
            from ..distributed import RayOptions

            options["executor"] = RayOptions(
                address=ray_address, actors=actors, actor_cpus=actor_cpus, actor_gpus=actor_gpus
            )
        _run(
            provider,
            dataset,
            out,
            tasks,
            limit,
            concurrency,
            seed,
            config,
            restart,
            keep_errors,
            allow_errors,
            batch=options,
        )

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option(help="Where the demo's report goes.")] = Path("mmbridge-demo"),
        limit: Annotated[int | None, option(Limit, help="At most this many samples per task.")] = 300,
    ) -> None:
        """Compare the local model (if installed), the blind prior, fake, and OpenAI (if OPENAI_API_KEY is set)."""
        from rich.console import Console

        from ..registry import list_providers

        ready = {row.type for row in list_providers() if row.status == "ready"}
        providers = (["local"] if "torch" in ready else []) + ["prior", "fake"]
        extra = {}
        if os.environ.get("OPENAI_API_KEY") and "openai" in ready:
            providers.append("openai")
        else:  # the cascade analysis needs an API beside the local model: a plainly named stand-in
            extra[STAND_IN] = {"type": "standin", "truth": DEMO_DATASET, "accuracy": 0.97}
            providers.append(STAND_IN)
        skipped = [] if "torch" in ready else ["local (pip install mmbridge-torch)"]
        if not os.environ.get("OPENAI_API_KEY"):
            skipped.append("openai (set OPENAI_API_KEY)")
        console = Console()
        console.print(
            f"demo: {', '.join(providers)} on {DEMO_DATASET}" + (f"; skipped: {', '.join(skipped)}" if skipped else "")
        )
        if extra:
            console.print(
                f"{STAND_IN} is NOT an API: a stand-in that knows the answers, right 97% of the time by "
                "construction, charging gpt-4o-mini's prices"
            )
        _run(providers, DEMO_DATASET, out, None, limit, None, 0, None, extra=extra)
