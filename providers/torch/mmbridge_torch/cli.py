"""The progress display of ``mmbridge train``: loss, accuracy, images/s and ETA in a rich bar."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .train import TrainOptions, train

__all__ = ["run_training"]


def run_training(**kwargs: Any) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    options = TrainOptions(**kwargs)
    console = Console(stderr=True)
    columns = [
        TextColumn("training"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("loss {task.fields[loss]:.3f} vqa {task.fields[vqa]:.3f} verify {task.fields[verify]:.3f}"),
        TextColumn("{task.fields[questions]:,.0f} questions/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    last_line = [0.0]
    # the bar appears with the first step: a refusal before it (bad data, device or folder) stays one line
    bar = Progress(*columns, console=console, transient=False)
    task = bar.add_task("train", total=1.0, loss=0.0, vqa=0.0, verify=0.0, questions=0.0)
    try:

        def update(event: dict[str, Any]) -> None:
            if event["event"] == "info":
                console.print(event["message"])
                return
            bar.start()  # once; later calls return at once
            if event["event"] == "step":
                bar.update(
                    task,
                    completed=min(event["progress"], 1.0),
                    loss=event["loss"],
                    vqa=event.get("vqa_acc", 0.0),
                    verify=event.get("verify_acc", 0.0),
                    questions=event["questions_per_s"],
                )
                if not console.is_terminal and time.monotonic() - last_line[0] >= 30:  # a log gets a line now and then
                    last_line[0] = time.monotonic()
                    console.print(
                        f"{event['progress']:.0%} loss {event['loss']:.3f} {event['questions_per_s']:,.0f} questions/s"
                    )
            else:
                parts = ", ".join(f"{k} {v:.4f}" for k, v in event.items() if isinstance(v, float))
                bar.console.print(f"step {event['step']}: validation {parts or '(no validation data)'}")

        report = train(options, on_update=update)
    finally:
        if bar.live.is_started:  # a refusal before the first step leaves no empty line behind
            bar.stop()
    console.print(f"best checkpoint: {Path(options.out) / 'best'}  {report}")
    return report
