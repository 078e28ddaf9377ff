"""The built-in ``renders`` data set: photo-like scenes (shading, shadows, a textured floor,
lighting that changes, JPEG) with Sort-of-CLEVR's question families."""

from .build import GENERATOR_VERSION, MANIFEST, generate_renders

__all__ = ["GENERATOR_VERSION", "MANIFEST", "generate_renders"]
