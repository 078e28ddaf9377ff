"""The detector finder: objects in photos, as a torchvision detector sees them.

Flat colours and floors (flat.py, shaded.py) are not how photos look: a photo's objects are found
by a detector trained on photos. This finder runs a torchvision Faster R-CNN (or Mask R-CNN) and
keeps its boxes above a score threshold, each with the detector's own description of the region:
the 1,024 features its box head computes from the region's pooled feature maps, the "bottom-up"
region features that won VQA in 2017 (Anderson et al. 2018). An object's token is then the
description objects.py gives every finder's objects (colour, centre, size, outline: the box, or
Mask R-CNN's mask) followed by those features.

Weights come from torchvision (``"DEFAULT"``, downloaded on the user's machine) or a state-dict
file of the whole torchvision model; a checkpoint carries them in its ``model.safetensors``, so
answering downloads nothing. Training finds each picture's objects once and keeps them on disk
(backbones.cached_features), keyed by the pixels and the detector's weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmbridge.errors import ConfigError

from .backbones import load_torchvision_weights
from .flat import Found

__all__ = ["DETECTORS", "REGION", "RegionDetector"]

#: torchvision detectors with a box head whose features describe each region (1,024 wide)
DETECTORS = (
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "maskrcnn_resnet50_fpn",
)
REGION = 1024  # width of a region's box-head features


def _torchvision_detector(name: str, size: int, threshold: float) -> nn.Module:
    from torchvision import models

    if name not in DETECTORS:
        raise ConfigError(f"detector {name!r} is not known; use one of {', '.join(DETECTORS)}")
    return models.get_model(
        name,
        weights=None,
        weights_backbone=None,
        min_size=size,
        max_size=size,
        box_score_thresh=threshold,
        box_detections_per_img=100,
        # 100 proposals a picture, not 1,000: the box head's cost is per proposal (120 -> 78 ms a
        # 224-pixel picture here against 300), and the objects kept are far fewer (max_objects)
        rpn_post_nms_top_n_test=100,
    )


class RegionDetector(nn.Module):
    """A torchvision detector as an object finder: (3,H,W) uint8 pictures in, ``Found`` out, each
    object with its region features (``Found.regions``)."""

    width = REGION  # what it adds to each object's description (objects.width)

    def __init__(self, name: str, size: int = 320, threshold: float = 0.2) -> None:
        super().__init__()
        self.name, self.size, self.threshold = name, size, threshold
        self.model = _torchvision_detector(name, size, threshold)
        self.model.eval()
        self.requires_grad_(False)  # a finder: never trained with the model that reads its objects

    def train(self, mode: bool = True) -> RegionDetector:
        super().train(False)  # always in eval mode: its batch norms are frozen, its heads post-process
        return self

    def load_weights(self, weights: str) -> None:
        """``weights``: "DEFAULT" (torchvision's, downloaded here) or a state-dict file of the whole
        torchvision detector."""
        load_torchvision_weights(self.model, self.name, weights, "detector")

    @torch.no_grad()
    def find_batch(self, images: torch.Tensor, limit: int) -> list[Found]:
        """(B,3,H,W) uint8 -> what the detector found in each picture: up to ``limit`` objects, the
        highest scores first, as masks (Mask R-CNN's, else the box) with their region features."""
        m = self.model
        h, w = images.shape[-2:]
        pixels = [image.float() / 255.0 for image in images.cpu()]
        batch, _ = m.transform(pixels)
        maps = m.backbone(batch.tensors)
        proposals, _ = m.rpn(batch, maps)
        detections, _ = m.roi_heads(maps, proposals, batch.image_sizes)
        detections = [{k: v[:limit] for k, v in d.items()} for d in detections]
        boxes = [d["boxes"] for d in detections]
        pooled = m.roi_heads.box_roi_pool(maps, boxes, batch.image_sizes)
        regions = m.roi_heads.box_head(pooled).float().split([len(b) for b in boxes])
        detections = m.transform.postprocess(detections, batch.image_sizes, [(h, w)] * len(pixels))
        return [self._found(d, r.numpy(), h, w) for d, r in zip(detections, regions, strict=True)]

    @staticmethod
    def _found(detection: dict[str, torch.Tensor], regions: np.ndarray, h: int, w: int) -> Found:
        masks, kept = [], []
        for i, box in enumerate(detection["boxes"].round().long().tolist()):
            x0, y0 = max(box[0], 0), max(box[1], 0)
            x1, y1 = min(max(box[2], x0 + 1), w), min(max(box[3], y0 + 1), h)
            if x0 >= w or y0 >= h:
                continue
            if "masks" in detection:
                mask = detection["masks"][i, 0].numpy() > 0.5
                if not mask.any():
                    continue
            else:
                mask = np.zeros((h, w), bool)
                mask[y0:y1, x0:x1] = True
            masks.append(mask)
            kept.append(i)
        union = np.logical_or.reduce(masks) if masks else np.zeros((h, w), bool)
        return Found(masks, 1 - float(union.mean()), 1.0, regions[kept].reshape(len(kept), REGION))
