"""What an image becomes before the model reads it: a grid of cells (a small CNN with coordinate
channels, or a pretrained trunk), or the objects a finder sees in the pixels (objects.py, detector.py)."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .objects import XY, Finder, present, segment_batch, width

__all__ = ["BackboneEncoder", "ImageEncoder", "ObjectEncoder", "coords"]


def coords(size: int, device: torch.device) -> torch.Tensor:
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
        x = torch.cat([x, coords(x.shape[-1], x.device).expand(b, -1, -1, -1)], dim=1)  # (B,5,S,S)
        x = self.cnn(x.contiguous(memory_format=torch.channels_last))  # (B,2w,S/8,S/8)
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # (B,G,D), G = (S/8)^2
        xy = coords(x.shape[-1], x.device).flatten(1).T  # (G,2)
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
        xy = coords(x.shape[-1], x.device).flatten(1).T  # (G,2)
        return tokens + self.pos(torch.cat([xy, (xy**2).sum(-1, keepdim=True)], dim=-1))
