"""The local vision-language model (in the manner of nanoGPT's model.py): two models behind one
small interface, chosen by ``ModelConfig.image_tokens``.

    GridModel, for pictures no finder handles (photos, textures, anything):
    image (B,3,S,S) ──CNN+coords (or a pretrained trunk)──▶ grid tokens (B,G,D) ──self-attention──▶ memory
    question / statement tokens (Q,L) ──embed──▶ fusion blocks: text self-attn, text→image cross-attn
                                                 (with a learned "nothing here" sink), MLP ──▶ [task token]

    ObjectModel, for pictures of objects (synthetic scenes, diagrams, renders; photos given a detector):
    image ──a finder (objects.py: flat, shaded; detector.py)──▶ object tokens (B,K,D) ──▶ memory
    question tokens (Q,L) ──a text encoder (text.py: lstm or transformer)──▶ words, sentence
                          ──the object reader (reader.py: find what is named, then what it relates to)──▶ state

    both: state ──▶ answer logits (vqa) | true/false logit (verify)
          caption tokens (C,T) ──causal decoder with cross-attn to the memory──▶ next-word logits

The interface (``Model``): ``encode_images`` (pixels, or features cached in training -> ``Memory``),
``read`` (the memory and each query's image and tokens -> ``Reading``: the state, and what only
training's auxiliary losses read), ``answer_logits``, ``verify_logit`` and ``caption_logits``.
The image is encoded once and every question about it reads that encoding: one image, many
queries per batch (``q_image`` maps each query to its image).

In the grid model coordinates enter twice: as input channels of the CNN (so features know where
they are) and as (x, y, x^2 + y^2) features of the grid tokens, which lets one attention head
score -distance^2 between objects ("closest to"). Even with the key features of blocks.py,
position and relation questions stayed at chance until training also told the first
cross-attention head which object a question names (losses.py, from scene.py's targets): with that
"oracle" the readout learns left/right in ~100 steps; without it, not in 1,200. A user's data has
no scenes: for pictures of objects the object model learns from answers alone (reader.py).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from .blocks import Attention, Block, Memory
from .config import ModelConfig
from .encoders import BackboneEncoder, ImageEncoder, ObjectEncoder
from .reader import ObjectReader, Trace
from .vocab import used_columns

__all__ = ["GridModel", "Memory", "Model", "ModelConfig", "ObjectModel", "Reading", "build_model"]


class Reading(NamedTuple):
    """What reading the images gives for each query: the task token's state (Q,D); per fusion
    layer, its cross-attention's first-head choice over the memory (Q,M), the sink first (grid
    tokens; the scene grounding loss trains them); or the object reader's trace (object tokens;
    its mixture loss reads it)."""

    state: torch.Tensor
    choices: tuple[torch.Tensor | None, ...] = ()
    trace: Trace | None = None


def _gpt_init(module: nn.Module) -> None:
    """GPT-2's initialization: linear and embedding weights at std 0.02, biases zero."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class Model(nn.Module):
    """What both models share: the answer and true/false heads on a query's state, the caption
    decoder (it reads either model's ``Memory``), the words it embeds, and the memory's sink (read
    when nothing in the image matches)."""

    def __init__(self, cfg: ModelConfig, state: int) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.sink = nn.Parameter(torch.zeros(1, 1, d))
        self.words = nn.Embedding(cfg.vocab_size, d)
        self.answer_head = nn.Linear(state, cfg.answer_size)
        self.verify_head = nn.Linear(state, 1)
        self.caption_pos = nn.Parameter(torch.zeros(1, cfg.max_caption, d))
        self.decoder = nn.ModuleList(
            Block(d, cfg.n_heads, cfg.dropout, cfg.key_size) for _ in range(cfg.caption_layers)
        )
        self.decoder_ln = nn.LayerNorm(d)

    def _init_shared(self) -> None:
        """GPT-2's initialization for every module built so far, and the learned positions and sink."""
        self.apply(_gpt_init)
        for p in (self.caption_pos, self.sink):
            nn.init.normal_(p, std=0.02)

    @classmethod
    def current_name(cls, name: str) -> str | None:
        """The name a parameter saved by an earlier version has now (None: no longer used), so
        checkpoints trained before still load."""
        return name

    def encode_images(self, images: torch.Tensor) -> Memory:
        """(B,3,S,S) uint8 pixels, or the features training caches for them -> the images' ``Memory``."""
        raise NotImplementedError

    def read(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> Reading:
        """Read the image memory for each query: its state, and what training's auxiliary losses read.

        memory: the images' ``Memory``; q_image: (Q,) index of each query's image; tokens: (Q,L), padding = 0.
        """
        raise NotImplementedError

    def fuse(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Each query's state (Q,S): ``read`` without what only training reads."""
        return self.read(memory, q_image, tokens).state

    def answer_logits(self, state: torch.Tensor) -> torch.Tensor:
        return self.answer_head(state)  # (Q,A)

    def verify_logit(self, state: torch.Tensor) -> torch.Tensor:
        return self.verify_head(state).squeeze(-1)  # (Q,)

    def caption_logits(self, memory: Memory, c_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Next-word logits (C,T,V) for caption prefixes ``tokens`` (C,T) of images ``c_image``."""
        x = self.words(tokens) + self.caption_pos[:, : tokens.shape[1]]
        for block in self.decoder:
            x = block(x, memory, c_image, causal=True)[0]
        return self.decoder_ln(x) @ self.words.weight.T  # tied with the input embedding

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class GridModel(Model):
    """The image as a grid of cells, read by fusion blocks: text self-attention, cross-attention to
    the cells, MLP; the task token's state answers."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, cfg.d_model)
        d, heads = cfg.d_model, cfg.n_heads
        self.encoder = ImageEncoder(cfg) if cfg.backbone == "cnn" else BackboneEncoder(cfg)
        self.image_blocks = nn.ModuleList(Block(d, heads, cfg.dropout) for _ in range(cfg.image_layers))
        self.image_ln = nn.LayerNorm(d)
        self.text_pos = nn.Parameter(torch.zeros(1, cfg.max_text, d))
        self.fusion = nn.ModuleList(Block(d, heads, cfg.dropout, cfg.key_size) for _ in range(cfg.fusion_layers))
        self.fusion_ln = nn.LayerNorm(d)
        # auxiliary: what is in each grid cell (class 0 = nothing), and where in the cell; the beliefs
        # feed back into the tokens, so reasoning reads clean attributes early
        size = cfg.aux_colors + cfg.aux_shapes + 2 + 2
        self.aux = nn.Linear(d, size) if cfg.aux_colors else None
        self.aux_in = nn.Linear(size, d) if cfg.aux_colors else None
        self._init_shared()
        nn.init.normal_(self.text_pos, std=0.02)
        # the few inputs that carry clean facts (beliefs, positions) start at PyTorch's default scale,
        # not GPT's 0.02: at 0.02 they are drowned in the image features for hundreds of steps
        for module in self.modules():
            if isinstance(module, Attention) and module.select is not None and module.where is not None:
                module.select.reset_parameters()
                module.where.reset_parameters()
        if self.aux_in is not None:
            self.aux_in.reset_parameters()

    def encode_images(self, images: torch.Tensor, *, cells: bool = False) -> Any:
        """The images' ``Memory``: G+1 tokens, the sink first, and their positions.

        With ``cells=True`` also the auxiliary per-cell outputs (colour logits, shape logits, offset).
        A token's position is its cell's centre, or, with the auxiliary heads, the predicted centre
        of the object in it (a cell is 8 px, too coarse for "closest to" with a 3 px margin).
        """
        x = self.encoder(images)
        b, g = x.shape[0], self.encoder.grid
        out = beliefs = None
        offset = torch.full((b, g * g, 2), 0.5, device=x.device)
        bias = torch.zeros(b, g * g + 1, device=x.device)
        if self.aux is not None and self.aux_in is not None:
            out = self.aux(x)  # (B,G,C+1+S+1+2)
            beliefs = self._beliefs(out)
            x = x + self.aux_in(beliefs)
            beliefs, offset = beliefs[..., :-2].detach().float(), beliefs[..., -2:].detach().float()
            # attend to objects: with ~4 objects in 64 cells, uniform attention gave each 1.5% of the
            # weight and the gradient that teaches attention where to look was as faint
            bias[:, 1:] = torch.log((1 - beliefs[..., 0]).clamp_min(1e-4))
        for block in self.image_blocks:
            x = block(x)[0]
        x = self.image_ln(x)
        cell = torch.stack(torch.meshgrid(torch.arange(g), torch.arange(g), indexing="xy")).flatten(1).T  # (G,2)
        where = (cell.to(x.device) + offset) * (2 / g) - 1  # (B,G,2) in [-1, 1]
        keys = torch.cat([where, (where**2).sum(-1, keepdim=True)], -1)
        keys = keys if beliefs is None else torch.cat([beliefs, keys], -1)  # (B,G,K)
        memory = Memory(
            torch.cat([self.sink.expand(b, -1, -1), x], dim=1),
            torch.cat([torch.zeros(b, 1, 2, device=x.device), where], dim=1),
            torch.cat([torch.zeros(b, 1, keys.shape[-1], device=x.device), keys], dim=1),
            bias,
        )
        if not cells:
            return memory
        assert out is not None, "this model has no auxiliary heads"
        c, s = self.cfg.aux_colors + 1, self.cfg.aux_shapes + 1
        return memory, (out[..., :c], out[..., c : c + s], torch.sigmoid(out[..., -2:]))

    def _beliefs(self, out: torch.Tensor) -> torch.Tensor:
        """Colour and shape probabilities, and the object's offset in its cell."""
        c, s = self.cfg.aux_colors + 1, self.cfg.aux_shapes + 1
        return torch.cat([out[..., :c].softmax(-1), out[..., c : c + s].softmax(-1), torch.sigmoid(out[..., -2:])], -1)

    def read(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> Reading:
        tokens = used_columns(tokens)  # the padding columns every query has: half the work or more
        x = self.words(tokens) + self.text_pos[:, : tokens.shape[1]]  # (Q,L,D)
        pad = (tokens == 0)[:, None, None, :]  # (Q,1,1,L) True where padding
        mask = torch.zeros(pad.shape, dtype=x.dtype, device=x.device).masked_fill(pad, float("-inf"))
        words = (tokens != 0).unsqueeze(-1).to(x.dtype)  # (Q,L,1)
        choices = []
        for block in self.fusion:
            x, choice = block(x, memory, q_image, mask=mask, pool=words)
            choices.append(choice)
        return Reading(self.fusion_ln(x[:, 0]), choices=tuple(choices))  # the task token


class ObjectModel(Model):
    """The objects a finder sees in the pixels as tokens (encoders.ObjectEncoder), read for each
    question by the object reader (reader.py), whose grounding loss needs no labels."""

    #: parameters that models with object tokens carried, unused, before the two models were split
    UNUSED = ("image_ln.weight", "image_ln.bias", "text_pos", "fusion_ln.weight", "fusion_ln.bias")
    #: where parameters saved before the text encoder was its own module (text.py) are now
    MOVED = {"reader.embed.": "reader.text.embed.", "reader.lstm.": "reader.text.lstm."}

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, cfg.reader_hidden)
        self._init_shared()
        # the encoder and reader keep PyTorch's initialization (measured: at GPT's 0.02 the words'
        # keys start too faint for attention to find the objects they name)
        self.encoder = ObjectEncoder(cfg)
        self.reader = ObjectReader(
            cfg.vocab_size,
            cfg.answer_size,
            cfg.d_model,
            cfg.reader_hidden,
            cfg.n_heads,
            words=cfg.reader_words,
            max_text=cfg.max_text,
            text=cfg.text_encoder,
            hop1=cfg.hop1,
        )

    @classmethod
    def current_name(cls, name: str) -> str | None:
        if name in cls.UNUSED:
            return None
        for old, new in cls.MOVED.items():
            if name.startswith(old):
                return new + name.removeprefix(old)
        return name

    def encode_images(self, images: torch.Tensor) -> Memory:
        """The objects' ``Memory``: the sink first, empty slots masked by the bias, so the caption
        decoder reads them as it reads a grid."""
        tokens, where, valid = self.encoder(images)
        b = tokens.shape[0]
        keys = torch.cat([where, (where**2).sum(-1, keepdim=True)], -1)
        return Memory(
            torch.cat([self.sink.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1),
            torch.cat([torch.zeros(b, 1, 2, device=where.device), where], dim=1),
            torch.cat([torch.zeros(b, 1, 3, device=where.device), keys], dim=1),
            torch.cat([torch.zeros(b, 1, device=where.device), (~valid).float() * -1e4], dim=1),
        )

    def read(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> Reading:
        m = memory
        state, trace = self.reader(m.tokens[:, 1:], m.where[:, 1:], m.bias[:, 1:] == 0, q_image, tokens)
        return Reading(state, trace=trace)

    def grounding_loss(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The reader's contrast of questions' words with the batch's objects."""
        return self.reader.grounding_loss(memory.tokens[:, 1:], memory.bias[:, 1:] == 0, q_image, tokens)


def build_model(cfg: ModelConfig) -> Model:
    """The model ``cfg.image_tokens`` names: "grid" or "objects"."""
    return ObjectModel(cfg) if cfg.image_tokens == "objects" else GridModel(cfg)


def cosine_lr(progress: float, peak: float) -> float:
    """Learning rate at ``progress`` (0..1 of the run): cosine decay from the peak to 5% of it (a
    constant rate spiked late in long runs; this did not). The trainer warms up over its first steps."""
    done = min(1.0, max(progress, 0.0))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
