"""Metrics, pure Python and numpy: VQA accuracy, accuracy, BLEU, CIDEr-D, ROUGE-L, CHAIR."""

from .chair import chair
from .text import bleu, cider, rouge_l, tokenize
from .vqa import accuracy, normalize_vqa, vqa_accuracy

__all__ = ["accuracy", "bleu", "chair", "cider", "normalize_vqa", "rouge_l", "tokenize", "vqa_accuracy"]
