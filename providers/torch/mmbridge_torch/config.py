"""``ModelConfig``: every setting and width of the local model, saved in a checkpoint's config.json
and checked on load (checkpoint.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ModelConfig"]


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
    text_encoder: str = "lstm"  # with "objects": the reader's question encoder (text.TEXT_ENCODERS)
    # with "objects": how hop 1's head 0 scores an object: "match" (its best cosine with any one word,
    # as the grounding contrast scores it; reader.py) or "sum" (the sum of the words' keys dotted
    # with it: what checkpoints saved before "match" read, and still do)
    hop1: str = "match"
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
