"""The transformer pieces of the grid model and the caption decoder: attention, MLP, block, and the
image ``Memory`` they read.

Cross-attention to the image is built so that "find the object the question names, then say
where it is" is easy to learn:

- keys: beside the learned keys, each image token offers explicit key features (its colour and
  shape beliefs from the auxiliary heads, when the data has scenes, and its x, y, x^2 + y^2); one
  query per question, made from the mean of its tokens, is matched against them with a gain;
- values: each head also returns the attention-weighted (x, y) of what it read (a soft-argmax,
  as in Levine et al.'s spatial softmax), and how many tokens its key-feature query matches (a
  sum of sigmoids: softmax weights sum to one, so an average of what was read cannot easily tell
  two circles from three);
- a bias: the log-probability that a token holds an object is added to every score, so attention
  spreads over the few objects, not over 64 mostly empty cells.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Block", "Memory"]

SELECT_GAIN = 4.0  # see Attention.forward
COUNT_SCALE = 4.0  # a head's count of matching tokens is divided by this: inputs of order one


class Memory(NamedTuple):
    """The encoded images, the sink first: tokens (B,M,D); each token's (x, y) in [-1, 1] (B,M,2);
    its explicit key features (B,M,K), see ``ModelConfig.key_size``; and a bias (B,M) added to
    every cross-attention score: the log-probability that the token holds an object (zero without
    the auxiliary heads)."""

    tokens: torch.Tensor
    where: torch.Tensor
    keys: torch.Tensor
    bias: torch.Tensor

    @property
    def device(self) -> torch.device:
        return self.tokens.device


class Attention(nn.Module):
    """Multi-head attention over ``d`` wide tokens. Given ``key_size`` (cross-attention to the image
    memory) each head also matches a query of its own against the tokens' explicit key features
    (what and where they are), and returns the attention-weighted position of what it read beside
    its values."""

    def __init__(self, d: int, heads: int, dropout: float = 0.0, key_size: int | None = None) -> None:
        super().__init__()
        self.n_heads = heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.select = nn.Linear(d, heads * key_size) if key_size else None
        self.where = nn.Linear(2 * heads, d) if key_size else None
        self.count = nn.Linear(heads, d) if key_size else None
        self.dropout = dropout

    def forward(
        self,
        x: torch.Tensor,
        memory: Memory | None = None,
        index: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: (N,T,D). Self-attention, or cross-attention to ``memory`` where row i of x reads
        image index[i]: keys and values are projected once per image, not once per query.
        ``context`` (N,1,D), when given, forms the key-feature query of every token of its row.
        Returns the output and, where key features are read, the first head's scores of the first
        token over the memory (N,M) by key features alone (what the scene grounding loss trains)."""
        source = x if memory is None else memory.tokens
        b, n, d = x.shape  # (rows, tokens, d_model)
        h, m = self.n_heads, source.shape[1]
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (N,H,T,dh)
        kv = self.kv(source).view(source.shape[0], m, 2, h, d // h)  # (B,M,2,H,dh)
        if index is not None:
            kv = kv[index]  # (N,M,2,H,dh): each row's image
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (N,H,M,dh)
        scale, counted, choice = None, None, None
        if memory is not None and self.select is not None and self.where is not None and self.count is not None:
            rows = (lambda t: t) if index is None else (lambda t: t[index])  # noqa: E731
            keys, where, bias = rows(memory.keys), rows(memory.where), rows(memory.bias)  # (N,M,K) (N,M,2) (N,M)
            # SDPA divides every score by sqrt(dh); the key features are undone from that and given a
            # gain, so a query of modest weights can already pick a colour: with the 1/sqrt(dh) alone
            # Adam's steps of ~lr needed thousands of steps to make any choice
            chosen = SELECT_GAIN * math.sqrt(d // h) * self.select(x if context is None else context).expand(b, n, -1)
            chosen = chosen.reshape(b, n, h, -1).transpose(1, 2)  # (N,H,T,K)
            picked = torch.einsum("nhtk,nmk->nhtm", chosen, keys.to(chosen.dtype)) / math.sqrt(d // h)
            picked = picked + bias[:, None, None]  # (N,H,T,M): how well each token matches, by key features alone
            choice = picked[:, 0, 0]  # the first head's choice for the first token (losses.py)
            # how many tokens match, sink left out: a softmax average cannot say "three" (a sum can)
            counted = torch.sigmoid(picked[..., 1:]).sum(-1).transpose(1, 2) / COUNT_SCALE  # (N,T,H)
            q = torch.cat([q, chosen], dim=-1)  # (N,H,T,dh+K)
            k = torch.cat([k, keys[:, None].expand(-1, h, -1, -1).to(k.dtype)], dim=-1)  # (N,H,M,dh+K)
            v = torch.cat([v, where[:, None].expand(-1, h, -1, -1).to(v.dtype)], dim=-1)  # (N,H,M,dh+2)
            mask, scale = bias[:, None, None, :].to(q.dtype), 1 / math.sqrt(d // h)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0, scale=scale
        )
        out = self.out(y[..., : d // h].transpose(1, 2).reshape(b, n, d))
        if counted is not None:  # the heads read key features: add where they read and how many matched
            out = out + self.where(y[..., d // h :].transpose(1, 2).reshape(b, n, 2 * h)) + self.count(counted)
        return out, choice


class MLP(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm block: self-attention, cross-attention to a memory (given ``key_size``: the memory's
    explicit key features, see ``Attention``), MLP."""

    def __init__(self, d: int, heads: int, dropout: float = 0.0, key_size: int | None = None) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(d), Attention(d, heads, dropout)
        self.cross = Attention(d, heads, dropout, key_size) if key_size else None
        self.ln2 = nn.LayerNorm(d) if key_size else None
        self.ln3, self.mlp = nn.LayerNorm(d), MLP(d)

    def forward(
        self,
        x: torch.Tensor,
        memory: Memory | None = None,
        index: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        pool: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``pool`` (N,T,1): weights of the tokens whose mean chooses, for the whole row, which
        image tokens to read by their key features (a question is one query, not one per word).
        Returns the output and the cross-attention's choice (``Attention.forward``), if any."""
        x = x + self.attn(self.ln1(x), mask=mask, causal=causal)[0]
        choice = None
        if self.cross is not None:
            y = self.ln2(x)
            context = None if pool is None else (y * pool).sum(1, keepdim=True) / pool.sum(1, keepdim=True)
            read, choice = self.cross(y, memory, index, context=context)
            x = x + read
        return x + self.mlp(self.ln3(x)), choice
