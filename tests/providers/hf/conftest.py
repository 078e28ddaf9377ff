"""A tiny random image-text-to-text model written once per session, loaded by path with the hub off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("transformers")
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub

from mmbridge_hf.testing import write_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny-vlm") / "model")
