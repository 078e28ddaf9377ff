"""The object reader's question encoder: one module, swapped by ``ModelConfig.text_encoder``.

Every encoder maps a question's tokens (Q,L) (padding 0) to its sentence vector (Q,D) and its
words' own embeddings (Q,L',W) (L' the longest question's length; padding embeds to zero): the
reader matches the words against objects one by one (the grounding contrast and hop 1's keys),
so they are kept before any context mixes them.

- ``lstm`` (the default): an LSTM over the words; the sentence is its state after the last word.
- ``transformer``: self-attention blocks over the words and their positions (blocks.py); the
  sentence is the mean of the outputs over the real words.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Block
from .vocab import used_columns

__all__ = ["TEXT_ENCODERS", "TextEncoder", "build_text_encoder"]


class TextEncoder(nn.Module):
    """The interface: ``forward(tokens) -> (sentence (Q,D), words (Q,L',W))``; ``words(tokens)``
    the words alone (the grounding contrast reads nothing else)."""

    def __init__(self, vocab_size: int, words: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, words, padding_idx=0)

    def words(self, tokens: torch.Tensor) -> torch.Tensor:
        """The embeddings of the columns any question uses (Q,L',W)."""
        return self.embed(used_columns(tokens))


class LSTMText(TextEncoder):
    def __init__(self, vocab_size: int, words: int, d: int) -> None:
        super().__init__(vocab_size, words)
        self.lstm = nn.LSTM(words, d, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = used_columns(tokens)
        e = self.embed(tokens)
        out, _ = self.lstm(e)
        last = out[torch.arange(len(tokens), device=tokens.device), (tokens != 0).sum(1).clamp(min=1) - 1]
        return last, e


class TransformerText(TextEncoder):
    def __init__(self, vocab_size: int, words: int, d: int, heads: int, max_text: int, layers: int = 2) -> None:
        super().__init__(vocab_size, words)
        self.up = nn.Linear(words, d)
        self.pos = nn.Parameter(torch.zeros(max_text, d))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = used_columns(tokens)
        e = self.embed(tokens)
        real = tokens != 0  # (Q,L)
        seen = real.clone()
        seen[:, 0] = True  # an empty question still attends to something: no row of -inf
        x = self.up(e) + self.pos[: tokens.shape[1]]
        mask = torch.zeros(real.shape, dtype=x.dtype, device=x.device).masked_fill(~seen, float("-inf"))[:, None, None]
        for block in self.blocks:
            x = block(x, mask=mask)[0]
        weights = real.unsqueeze(-1).to(x.dtype)
        return self.ln((x * weights).sum(1) / weights.sum(1).clamp(min=1)), e


TEXT_ENCODERS = ("lstm", "transformer")


def build_text_encoder(kind: str, vocab_size: int, words: int, d: int, heads: int, max_text: int) -> TextEncoder:
    """The encoder ``kind`` names (``TEXT_ENCODERS``)."""
    if kind == "lstm":
        return LSTMText(vocab_size, words, d)
    if kind == "transformer":
        return TransformerText(vocab_size, words, d, heads, max_text)
    raise ValueError(f"text encoder {kind!r}: use one of {', '.join(TEXT_ENCODERS)}")
