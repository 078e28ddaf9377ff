"""Shared fixtures: small pictures written in several formats, a loopback OpenAI server, one Ray cluster."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage


def make_picture(width: int = 48, height: int = 32, seed: int = 0) -> PILImage.Image:
    """An RGB picture with structure (so orientation and scaling mistakes show)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    arr[: height // 2, : width // 3] = (255, 0, 0)
    return PILImage.fromarray(arr, "RGB")


def encode(im: PILImage.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def picture() -> PILImage.Image:
    return make_picture()


@pytest.fixture
def png_path(tmp_path: Path, picture: PILImage.Image) -> Path:
    path = tmp_path / "picture.png"
    picture.save(path)
    return path


@pytest.fixture
def shapes_png() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "shapes.png"


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder, so the default cache (.mmbridge/cache) never leaks between tests."""
    monkeypatch.chdir(tmp_path)
    for name in ("MMBRIDGE_CONFIG", "MMBRIDGE_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def openai_server():
    """A real OpenAI-compatible server on 127.0.0.1 (see mmbridge.testing), stopped after the test."""
    from mmbridge.testing import OpenAICompatibleServer

    with OpenAICompatibleServer(max_seconds=120) as server:
        yield server


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the whole test session (2 CPUs, no dashboard), shut down at the end."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
