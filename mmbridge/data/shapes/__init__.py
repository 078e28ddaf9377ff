"""The built-in ``shapes`` benchmark: Sort-of-CLEVR-style scenes generated offline from a seed."""

from .build import GENERATOR_VERSION, generate_shapes
from .scene import MANY_COLORS, Obj, Scene, Style, render, sample_scene

__all__ = ["GENERATOR_VERSION", "MANY_COLORS", "Obj", "Scene", "Style", "generate_shapes", "render", "sample_scene"]
