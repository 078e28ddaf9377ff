"""USD per million tokens for OpenAI vision models, as published on the date below.

Prices change: override them with ``prices`` in the provider's config. A model that matches
no entry (by exact name, or a dated snapshot of a listed name) gets ``cost_usd = None``.
"""

from __future__ import annotations

from . import ModelPrice

__all__ = ["PRICES_AS_OF", "cost_usd", "price_for"]

PRICES_AS_OF = "2025-08-07"

DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input_per_million=2.50, output_per_million=10.00),
    "gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60),
    "gpt-4.1": ModelPrice(input_per_million=2.00, output_per_million=8.00),
    "gpt-4.1-mini": ModelPrice(input_per_million=0.40, output_per_million=1.60),
    "gpt-4.1-nano": ModelPrice(input_per_million=0.10, output_per_million=0.40),
    "gpt-5": ModelPrice(input_per_million=1.25, output_per_million=10.00),
    "gpt-5-mini": ModelPrice(input_per_million=0.25, output_per_million=2.00),
    "gpt-5-nano": ModelPrice(input_per_million=0.05, output_per_million=0.40),
    "o4-mini": ModelPrice(input_per_million=1.10, output_per_million=4.40),
}


def price_for(model: str, overrides: dict[str, ModelPrice]) -> ModelPrice | None:
    """Exact name first, then the longest listed name that ``model`` extends with a date suffix."""
    table = {**DEFAULT_PRICES, **overrides}
    if model in table:
        return table[model]
    prefixes = [
        name for name in table if model.startswith(name + "-") and model[len(name) + 1 : len(name) + 2].isdigit()
    ]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_usd(
    price: ModelPrice | None, input_tokens: int | None, output_tokens: int | None, *, batch: bool = False
) -> float | None:
    """USD for one call; ``batch``: at the Batch API's price (half the table's unless it names one)."""
    if price is None or input_tokens is None or output_tokens is None:
        return None
    per_in, per_out = price.input_per_million, price.output_per_million
    if batch:
        per_in = price.batch_input_per_million if price.batch_input_per_million is not None else per_in / 2
        per_out = price.batch_output_per_million if price.batch_output_per_million is not None else per_out / 2
    return (input_tokens * per_in + output_tokens * per_out) / 1_000_000
