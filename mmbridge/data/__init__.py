"""Datasets: one JSON Lines format, readers for COCO captions and VQA v2, and the built-in ``shapes``."""

from .sample import Dataset, Sample
from .spec import load_dataset

__all__ = ["Dataset", "Sample", "load_dataset"]
