"""The fused vision-language model, whole in one file (in the manner of nanoGPT's model.py).

    image (B,3,S,S) ──CNN+coords──▶ grid tokens (B,G,D) ──self-attention──▶ image memory (B,G,D)
    question / statement tokens (Q,L) ──embed──▶ fusion blocks: text self-attn, text→image cross-attn
                                                  (with a learned "nothing here" sink), MLP
                                                ──▶ [task token] ──▶ answer logits (vqa) | true/false logit (verify)
    caption tokens (C,T) ──causal decoder with cross-attn to the image memory──▶ next-word logits

The image is encoded once and every question about it reads that encoding: one image, many
queries per batch (`q_image` maps each query to its image). Coordinates enter twice: as input
channels of the CNN (so features know where they are) and as (x, y, x^2 + y^2) features of the
grid tokens, which lets one attention head score -distance^2 between objects ("closest to").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FusedModel", "ModelConfig"]


@dataclass
class ModelConfig:
    vocab_size: int  # words of questions, statements and captions (+ specials)
    answer_size: int  # vqa answer classes seen in training
    image_size: int = 64  # input side; any image is letterboxed to it
    cnn_width: int = 64  # channels of the CNN's middle layers
    d_model: int = 128  # width of every token
    n_heads: int = 4
    image_layers: int = 2  # self-attention over the image grid, question independent
    fusion_layers: int = 3  # text self-attention + cross-attention to the image
    caption_layers: int = 2  # the caption decoder's depth
    max_text: int = 24  # tokens of a question or statement (task token included)
    max_caption: int = 40  # tokens of a caption (bos/eos included)
    dropout: float = 0.0
    # auxiliary heads, trained only when samples carry their scene (meta.scene): per grid cell, the
    # colour and shape of the object centred there and its offset in the cell; 0 turns them off
    aux_colors: int = 0
    aux_shapes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Attention(nn.Module):
    """Multi-head attention; keys and values may come from another sequence (cross-attention)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        """x: (N,T,D). Self-attention, or cross-attention to ``memory`` (B,M,D) where row i of x
        reads memory[index[i]]: keys and values are projected once per image, not once per query."""
        source = x if memory is None else memory
        b, n, d = x.shape  # (rows, tokens, d_model)
        h = self.n_heads
        q = self.q(x).view(b, n, h, d // h).transpose(1, 2)  # (N,H,T,dh)
        kv = self.kv(source).view(source.shape[0], source.shape[1], 2, h, d // h)  # (B,M,2,H,dh)
        if index is not None:
            kv = kv[index]  # (N,M,2,H,dh): each row's image
        k, v = kv.permute(2, 0, 3, 1, 4)  # 2 x (N,H,M,dh)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.up = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.down = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to a memory, MLP."""

    def __init__(self, cfg: ModelConfig, cross: bool) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(cfg.d_model), Attention(cfg)
        self.cross = Attention(cfg) if cross else None
        self.ln2 = nn.LayerNorm(cfg.d_model) if cross else None
        self.ln3, self.mlp = nn.LayerNorm(cfg.d_model), MLP(cfg)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
        *,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask=mask, causal=causal)
        if self.cross is not None:
            x = x + self.cross(self.ln2(x), memory, index)
        return x + self.mlp(self.ln3(x))


def _coords(size: int, device: torch.device) -> torch.Tensor:
    """(2, size, size): x and y in [-1, 1]."""
    line = torch.linspace(-1, 1, size, device=device)
    return torch.stack(torch.meshgrid(line, line, indexing="xy"))


class ImageEncoder(nn.Module):
    """CNN with coordinate input channels; returns a grid of tokens (stride 8) with position features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.cnn_width

        def conv(cin: int, cout: int, k: int, s: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.cnn = nn.Sequential(
            conv(5, w // 2, 5, 2), conv(w // 2, w, 3, 2), conv(w, 2 * w, 3, 2), conv(2 * w, 2 * w, 3, 1)
        )
        self.grid = cfg.image_size // 8
        self.proj = nn.Linear(2 * w, cfg.d_model)
        self.pos = nn.Linear(3, cfg.d_model)  # (x, y, x^2 + y^2) of the cell centre
        self.register_buffer("mean", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]  # images: (B,3,S,S) uint8
        x = images.float() / 255.0 - self.mean
        x = torch.cat([x, _coords(x.shape[-1], x.device).expand(b, -1, -1, -1)], dim=1)  # (B,5,S,S)
        x = self.cnn(x.contiguous(memory_format=torch.channels_last))  # (B,2w,S/8,S/8)
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # (B,G,D), G = (S/8)^2
        xy = _coords(x.shape[-1], x.device).flatten(1).T  # (G,2)
        pos = torch.cat([xy, (xy**2).sum(-1, keepdim=True)], dim=-1)  # (G,3)
        return tokens + self.pos(pos)


class FusedModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.encoder = ImageEncoder(cfg)
        self.image_blocks = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.image_layers))
        self.image_ln = nn.LayerNorm(d)
        self.sink = nn.Parameter(torch.zeros(1, 1, d))  # attended to when nothing in the image matches
        self.words = nn.Embedding(cfg.vocab_size, d)
        self.text_pos = nn.Parameter(torch.zeros(1, cfg.max_text, d))
        self.fusion = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.fusion_layers))
        self.fusion_ln = nn.LayerNorm(d)
        self.answer_head = nn.Linear(d, cfg.answer_size)
        self.verify_head = nn.Linear(d, 1)
        self.caption_pos = nn.Parameter(torch.zeros(1, cfg.max_caption, d))
        self.decoder = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.caption_layers))
        self.decoder_ln = nn.LayerNorm(d)
        # auxiliary: what is in each grid cell (class 0 = nothing), and where in the cell
        self.aux = nn.Linear(d, cfg.aux_colors + cfg.aux_shapes + 2 + 2) if cfg.aux_colors else None
        # the auxiliary beliefs feed back into the tokens, so reasoning reads clean attributes early
        self.aux_in = nn.Linear(cfg.aux_colors + cfg.aux_shapes + 2 + 2, d) if cfg.aux_colors else None
        self.apply(self._init)
        nn.init.normal_(self.text_pos, std=0.02)
        nn.init.normal_(self.caption_pos, std=0.02)
        nn.init.normal_(self.sink, std=0.02)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def encode_images(self, images: torch.Tensor, *, cells: bool = False) -> Any:
        """(B,3,S,S) uint8 -> image memory (B,G+1,D), the sink token first.

        With ``cells=True`` also the auxiliary per-cell outputs (colour logits, shape logits, offset).
        """
        x = self.encoder(images)
        out = None
        if self.aux is not None and self.aux_in is not None:
            out = self.aux(x)  # (B,G,C+1+S+1+2)
            x = x + self.aux_in(self._beliefs(out))
        for block in self.image_blocks:
            x = block(x)
        x = self.image_ln(x)
        memory = torch.cat([self.sink.expand(x.shape[0], -1, -1), x], dim=1)
        if not cells:
            return memory
        assert out is not None, "this model has no auxiliary heads"
        c, s = self.cfg.aux_colors + 1, self.cfg.aux_shapes + 1
        return memory, (out[..., :c], out[..., c : c + s], torch.sigmoid(out[..., -2:]))

    def _beliefs(self, out: torch.Tensor) -> torch.Tensor:
        """Colour and shape probabilities, and the object's offset in its cell."""
        c, s = self.cfg.aux_colors + 1, self.cfg.aux_shapes + 1
        return torch.cat([out[..., :c].softmax(-1), out[..., c : c + s].softmax(-1), torch.sigmoid(out[..., -2:])], -1)

    def fuse(self, memory: torch.Tensor, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Read the image memory for each query; returns the task token's state (Q,D).

        memory: (B,G+1,D); q_image: (Q,) index of each query's image; tokens: (Q,L), padding = 0.
        """
        length = max(int((tokens != 0).sum(1).max()), 1) if tokens.numel() else 1
        tokens = tokens[:, :length]  # drop the padding columns every query has: half the work or more
        x = self.words(tokens) + self.text_pos[:, :length]  # (Q,L,D)
        pad = (tokens == 0)[:, None, None, :]  # (Q,1,1,L) True where padding
        mask = torch.zeros(pad.shape, dtype=x.dtype, device=x.device).masked_fill(pad, float("-inf"))
        for block in self.fusion:
            x = block(x, memory, q_image, mask=mask)
        return self.fusion_ln(x[:, 0])  # the task token

    def answer_logits(self, state: torch.Tensor) -> torch.Tensor:
        return self.answer_head(state)  # (Q,A)

    def verify_logit(self, state: torch.Tensor) -> torch.Tensor:
        return self.verify_head(state).squeeze(-1)  # (Q,)

    def caption_logits(self, memory: torch.Tensor, c_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-word logits (C,T,V) for caption prefixes ``tokens`` (C,T) of images ``c_image``."""
        x = self.words(tokens) + self.caption_pos[:, : tokens.shape[1]]
        for block in self.decoder:
            x = block(x, memory, c_image, causal=True)
        return self.decoder_ln(x) @ self.words.weight.T  # tied with the input embedding

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def cosine_lr(progress: float, peak: float, warmup: float = 0.03) -> float:
    """Learning rate at ``progress`` (0..1 of the run): linear warmup over the first ``warmup``, then
    cosine decay to 5% of the peak (a constant rate spiked late in long runs; this did not)."""
    if progress < warmup:
        return peak * max(progress, 1e-3) / warmup
    done = min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
