"""The bounds every number a user gives must keep, the same wherever it is read.

Each bound is one pydantic type, used by config models (``seed: Seed``) and by CLI options
(``cli.bounded.option``), so ``--seed -1`` and ``seed = -1`` in mmbridge.toml fail alike, with the
bound in the message. Every float bound has an upper end, so none admits inf or nan; seconds are
capped at a day (every wait has a ceiling); sizes and counts are capped by what fits in memory on an
ordinary machine.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from annotated_types import Ge, Gt, Le

__all__ = [
    "Antialias",
    "Gradient",
    "Quality",
    "Count",
    "Concurrency",
    "Delay",
    "Devices",
    "Fraction",
    "Images",
    "Lifetime",
    "Limit",
    "Megabytes",
    "MAX_WAIT_S",
    "Seconds",
    "Number",
    "Seed",
    "Side",
    "Usd",
    "Waiting",
    "check",
    "words",
]

#: the longest any single wait, timeout or poll interval may be: a Batch API job's whole window
MAX_WAIT_S = 86_400.0

#: a timeout or an interval: finite, above zero, at most a day
Seconds = Annotated[float, Gt(0), Le(MAX_WAIT_S)]
#: how long something is kept: finite, above zero, at most ten years
Lifetime = Annotated[float, Gt(0), Le(3650 * 86_400.0)]
#: a wait that may be zero (a simulated delay)
Delay = Annotated[float, Ge(0), Le(MAX_WAIT_S)]
#: a random seed: numpy and torch both take any value in this range
Seed = Annotated[int, Ge(0), Le(2**32 - 1)]
#: a generated picture's side in pixels (a 1024² RGB canvas drawn 8x larger is 200 MB)
Side = Annotated[int, Ge(16), Le(1024)]
#: a share of something: 0 to 1
Fraction = Annotated[float, Ge(0), Le(1)]
#: how a generated picture is saved (``data.look.Look``): drawn this many times larger, JPEG quality,
#: background gradient in levels
Antialias = Annotated[int, Ge(1), Le(8)]
Quality = Annotated[int, Ge(1), Le(95)]
Gradient = Annotated[int, Ge(0), Le(200)]
#: pictures a data set is generated with (a million 64² PNGs is about 1 GB)
Images = Annotated[int, Ge(3), Le(1_000_000)]
#: samples taken per task
Limit = Annotated[int, Ge(1), Le(100_000_000)]
#: requests or calls at once
Concurrency = Annotated[int, Ge(1), Le(10_000)]
#: requests that may wait for a place beyond those answered at once
Waiting = Annotated[int, Ge(0), Le(100_000)]
#: US dollars (a budget)
Usd = Annotated[float, Ge(0), Le(1e9)]
#: a request body or a file, in MB
Megabytes = Annotated[float, Gt(0), Le(10_000)]
#: CPUs or GPUs a worker reserves (fractions share a device)
Devices = Annotated[float, Ge(0), Le(1024)]


def Count(low: int, high: int) -> Any:  # noqa: N802 - reads as a type where it is used
    """Whole numbers from ``low`` to ``high``."""
    return Annotated[int, Ge(low), Le(high)]


def Number(low: float, high: float, above: bool = False) -> Any:  # noqa: N802
    """Finite numbers from ``low`` (or above it, with ``above``) to ``high``."""
    return Annotated[float, Gt(low) if above else Ge(low), Le(high)]


def _figure(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def words(kind: Any) -> str:
    """``kind``'s bound in words, for messages: 'a whole number from 0 to 4294967295'."""
    base, *rules = get_args(kind)
    low = next((f"above {_figure(r.gt)}" for r in rules if isinstance(r, Gt)), None)
    low = low or next((f"from {_figure(r.ge)}" for r in rules if isinstance(r, Ge)), "")
    high = next((_figure(r.le) for r in rules if isinstance(r, Le)), "")
    noun = "a whole number" if base is int else "a finite number"
    joint = " to " if low.startswith("from") else " and at most "
    return f"{noun} {low}{joint}{high}".strip()


def check(kind: Any, value: Any, name: str | None = None) -> Any:
    """``value`` (a number, or text from a command line) read as ``kind``, or ValueError naming the bound."""
    from pydantic import TypeAdapter, ValidationError  # here: the CLI's --help must not import pydantic

    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError:
        shown = repr(value) if isinstance(value, str) else str(value)
        raise ValueError(f"{name + ' ' if name else ''}{shown} is not {words(kind)}") from None
