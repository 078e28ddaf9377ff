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

Even so, position and relation questions stayed at chance until training also told the first
cross-attention head which object a question names (losses.py, from scene.py's targets): with that
"oracle" the readout learns left/right in ~100 steps; without it, not in 1,200.

A user's data has no scenes. For pictures of objects on a background, ``image_tokens = "objects"``
replaces the grid: the objects a finder sees in the pixels (objects.py) become the tokens, and
reader.py, not the fusion blocks, reads them for each question; its grounding loss needs no
labels. The caption decoder reads object tokens as it reads a grid. Photos keep the grid, or,
given a detector's weights, take the objects it finds (detector.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .objects import XY, Finder, present, segment_batch, width
from .reader import ObjectReader, Trace

__all__ = ["FusedModel", "Memory", "ModelConfig", "Reading"]

SELECT_GAIN = 4.0  # see Attention.forward
COUNT_SCALE = 4.0  # a head's count of matching tokens is divided by this: inputs of order one


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
    # the image encoder: "cnn" (the small CNN below, for small synthetic images) or a torchvision
    # trunk for photos (backbones.BACKBONES), frozen unless finetune_backbone
    backbone: str = "cnn"
    finetune_backbone: bool = False
    # with backbone "hf:<id or folder>": the transformers vision tower's config and pixel mean and std
    # (hf_trunk.pretrained_tower), so a checkpoint rebuilds it without the folder or the hub
    backbone_config: dict | None = None
    # what the image becomes: "grid" (the encoder's grid of cells) or "objects" (the objects a finder
    # sees in the pixels, see objects.py, read by reader.py): for synthetic scenes, diagrams, renders
    image_tokens: str = "grid"
    max_objects: int = 16  # with "objects": the largest this many regions are kept
    reader_hidden: int = 256  # with "objects": the width of the reader's MLPs and of its state per query
    reader_words: int = 64  # with "objects": the width of the reader's word embeddings
    finder: str = "flat"  # with "objects": which finder sees them (objects.FINDERS: flat, shaded; or detector)
    # with finder "detector": which torchvision detector (detector.DETECTORS), the side it sees
    # pictures at, and the score from which its boxes are objects
    detector: str = "fasterrcnn_mobilenet_v3_large_fpn"
    detector_size: int = 320
    detector_threshold: float = 0.2
    # auxiliary heads, trained only when samples carry their scene (meta.scene): per grid cell, the
    # colour and shape of the object centred there and its offset in the cell; 0 turns them off
    aux_colors: int = 0
    aux_shapes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def key_size(self) -> int:
        """Explicit key features of an image token: with the auxiliary heads its colour and shape
        beliefs, and always its (x, y, x^2 + y^2)."""
        return (self.aux_colors + 1 + self.aux_shapes + 1 if self.aux_colors else 0) + 3


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


class Reading(NamedTuple):
    """What reading the images gives for each query: the task token's state (Q,D); per fusion
    layer, its cross-attention's first-head choice over the memory (Q,M), the sink first (grid
    tokens; the scene grounding loss trains them); or the object reader's trace (object tokens;
    its mixture loss reads it)."""

    state: torch.Tensor
    choices: tuple[torch.Tensor | None, ...] = ()
    trace: Trace | None = None


class Attention(nn.Module):
    """Multi-head attention. In cross-attention to the image memory each head also matches a query
    of its own against the tokens' explicit key features (what and where they are), and returns
    the attention-weighted position of what it read beside its values."""

    def __init__(self, cfg: ModelConfig, cross: bool = False) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.kv = nn.Linear(cfg.d_model, 2 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.select = nn.Linear(cfg.d_model, cfg.n_heads * cfg.key_size) if cross else None
        self.where = nn.Linear(2 * cfg.n_heads, cfg.d_model) if cross else None
        self.count = nn.Linear(cfg.n_heads, cfg.d_model) if cross else None
        self.dropout = cfg.dropout

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
        self.cross = Attention(cfg, cross=True) if cross else None
        self.ln2 = nn.LayerNorm(cfg.d_model) if cross else None
        self.ln3, self.mlp = nn.LayerNorm(cfg.d_model), MLP(cfg)

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
        self.grid = -(-cfg.image_size // 8)  # three stride-2 "same" convolutions: ceil(S / 8) cells a side
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


class ObjectEncoder(nn.Module):
    """Object tokens: each region's description (objects.py) through an MLP. Takes (B,3,S,S) uint8
    pixels (segmented here, on the CPU) or the descriptions themselves (B,K,F), computed once in training."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.limit, self.finder_name = cfg.max_objects, cfg.finder
        self.detector: nn.Module | None = None
        if cfg.finder == "detector":  # a learned finder: its weights are the model's (the checkpoint carries them)
            from .detector import RegionDetector

            self.detector = RegionDetector(cfg.detector, cfg.detector_size, cfg.detector_threshold)
        size = width(self.finder)
        self.mlp = nn.Sequential(nn.Linear(size, cfg.d_model), nn.ReLU(), nn.Linear(cfg.d_model, cfg.d_model))

    @property
    def finder(self) -> str | Finder:
        """What finds the objects: a finder's name (objects.FINDERS), or the detector."""
        return self.finder_name if self.detector is None else self.detector  # type: ignore[return-value]

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> tokens (B,K,D), centres (B,K,2) in [-1, 1], valid (B,K)."""
        features = segment_batch(images, self.limit, self.finder) if images.dtype == torch.uint8 else images.float()
        return self.mlp(features), features[..., XY], present(features)


class BackboneEncoder(nn.Module):
    """A torchvision trunk (ImageNet-normalized input, output stride 32) projected to grid tokens.

    Takes (B,3,S,S) uint8 pixels, or the trunk's own (B,C,g,g) float features (training with a
    frozen trunk computes those once, see backbones.cached_features)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        from .backbones import build_trunk, trunk_shape

        channels, self.grid = trunk_shape(cfg.backbone, cfg.image_size, cfg.backbone_config)
        self.trunk = build_trunk(cfg.backbone, cfg.backbone_config)
        self.frozen = not cfg.finetune_backbone
        self.trunk.requires_grad_(not self.frozen)
        self.proj = nn.Linear(channels, cfg.d_model)
        self.pos = nn.Linear(3, cfg.d_model)
        # ImageNet's statistics for torchvision's trunks; a transformers tower brings its own
        mean, std = getattr(self.trunk, "pixel_stats", ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> BackboneEncoder:
        super().train(mode)
        if self.frozen:
            self.trunk.eval()  # a frozen trunk keeps its batch-norm statistics
        return self

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() / 255.0 - self.mean) / self.std
        return self.trunk(x.contiguous(memory_format=torch.channels_last))  # (B,C,g,g)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images) if images.dtype == torch.uint8 else images.float()
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # (B,G,D)
        xy = _coords(x.shape[-1], x.device).flatten(1).T  # (G,2)
        return tokens + self.pos(torch.cat([xy, (xy**2).sum(-1, keepdim=True)], dim=-1))


class FusedModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        objects = cfg.image_tokens == "objects"
        self.encoder: nn.Module = nn.Identity()  # object tokens: set below, after the initialization
        if not objects:
            self.encoder = ImageEncoder(cfg) if cfg.backbone == "cnn" else BackboneEncoder(cfg)
        self.image_blocks = nn.ModuleList(Block(cfg, cross=False) for _ in range(0 if objects else cfg.image_layers))
        self.image_ln = nn.LayerNorm(d)
        self.sink = nn.Parameter(torch.zeros(1, 1, d))  # attended to when nothing in the image matches
        self.words = nn.Embedding(cfg.vocab_size, d)
        self.text_pos = nn.Parameter(torch.zeros(1, cfg.max_text, d))
        self.fusion = nn.ModuleList(Block(cfg, cross=True) for _ in range(0 if objects else cfg.fusion_layers))
        self.fusion_ln = nn.LayerNorm(d)
        state = cfg.reader_hidden if objects else d  # what fuse() returns per query
        self.answer_head = nn.Linear(state, cfg.answer_size)
        self.verify_head = nn.Linear(state, 1)
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
        # the few inputs that carry clean facts (beliefs, positions) start at PyTorch's default scale,
        # not GPT's 0.02: at 0.02 they are drowned in the image features for hundreds of steps
        for module in self.modules():
            if isinstance(module, Attention) and module.select is not None and module.where is not None:
                module.select.reset_parameters()
                module.where.reset_parameters()
        if self.aux_in is not None:
            self.aux_in.reset_parameters()
        # object tokens: their encoder and reader keep PyTorch's initialization (measured: at GPT's
        # 0.02 the words' keys start too faint for attention to find the objects they name)
        self.reader = None
        if objects:
            self.encoder = ObjectEncoder(cfg)
            self.reader = ObjectReader(
                cfg.vocab_size,
                cfg.answer_size,
                d,
                cfg.reader_hidden,
                cfg.n_heads,
                words=cfg.reader_words,
                max_text=cfg.max_text,
            )

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def encode_images(self, images: torch.Tensor, *, cells: bool = False) -> Any:
        """(B,3,S,S) uint8 (or a frozen backbone's features) -> image ``Memory``: G+1 tokens, the
        sink first, and their positions.

        With ``cells=True`` also the auxiliary per-cell outputs (colour logits, shape logits, offset).
        A token's position is its cell's centre, or, with the auxiliary heads, the predicted centre
        of the object in it (a cell is 8 px, too coarse for "closest to" with a 3 px margin).
        """
        if isinstance(self.encoder, ObjectEncoder):
            return self._encode_objects(images)
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

    def _encode_objects(self, images: torch.Tensor) -> Memory:
        """Object tokens as a ``Memory`` (the sink first, empty slots masked by the bias), so the
        caption decoder reads them as it reads a grid."""
        tokens, where, valid = self.encoder(images)
        b = tokens.shape[0]
        keys = torch.cat([where, (where**2).sum(-1, keepdim=True)], -1)
        return Memory(
            torch.cat([self.sink.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1),
            torch.cat([torch.zeros(b, 1, 2, device=where.device), where], dim=1),
            torch.cat([torch.zeros(b, 1, 3, device=where.device), keys], dim=1),
            torch.cat([torch.zeros(b, 1, device=where.device), (~valid).float() * -1e4], dim=1),
        )

    def grounding_loss(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Object tokens only: the reader's contrast of questions' words with the batch's objects."""
        assert self.reader is not None, "only a model with object tokens has a grounding loss"
        return self.reader.grounding_loss(memory.tokens[:, 1:], memory.bias[:, 1:] == 0, q_image, tokens)

    def _beliefs(self, out: torch.Tensor) -> torch.Tensor:
        """Colour and shape probabilities, and the object's offset in its cell."""
        c, s = self.cfg.aux_colors + 1, self.cfg.aux_shapes + 1
        return torch.cat([out[..., :c].softmax(-1), out[..., c : c + s].softmax(-1), torch.sigmoid(out[..., -2:])], -1)

    def read(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> Reading:
        """Read the image memory for each query: the task token's state, and what training's
        auxiliary losses read (``Reading``).

        memory: the images' ``Memory``; q_image: (Q,) index of each query's image; tokens: (Q,L), padding = 0.
        """
        if self.reader is not None:
            m = memory
            state, trace = self.reader(m.tokens[:, 1:], m.where[:, 1:], m.bias[:, 1:] == 0, q_image, tokens)
            return Reading(state, trace=trace)
        length = max(int((tokens != 0).sum(1).max()), 1) if tokens.numel() else 1
        tokens = tokens[:, :length]  # drop the padding columns every query has: half the work or more
        x = self.words(tokens) + self.text_pos[:, :length]  # (Q,L,D)
        pad = (tokens == 0)[:, None, None, :]  # (Q,1,1,L) True where padding
        mask = torch.zeros(pad.shape, dtype=x.dtype, device=x.device).masked_fill(pad, float("-inf"))
        words = (tokens != 0).unsqueeze(-1).to(x.dtype)  # (Q,L,1)
        choices = []
        for block in self.fusion:
            x, choice = block(x, memory, q_image, mask=mask, pool=words)
            choices.append(choice)
        return Reading(self.fusion_ln(x[:, 0]), choices=tuple(choices))  # the task token

    def fuse(self, memory: Memory, q_image: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The task token's state (Q,D) of each query (``read`` without what only training reads)."""
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


def cosine_lr(progress: float, peak: float) -> float:
    """Learning rate at ``progress`` (0..1 of the run): cosine decay from the peak to 5% of it (a
    constant rate spiked late in long runs; this did not). The trainer warms up over its first steps."""
    done = min(1.0, max(progress, 0.0))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done)))
