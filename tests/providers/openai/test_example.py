"""examples/openai_compatible.py runs unchanged against a local server, configured by a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openai")

from mmbridge.testing import OpenAICompatibleServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]


def test_example_against_the_loopback_server(tmp_path: Path, openai_server: OpenAICompatibleServer) -> None:
    config = tmp_path / "local.toml"
    example_config = (ROOT / "examples" / "openai.toml").read_text()
    config.write_text(
        example_config.replace("max_image_side = 768", f'max_image_side = 768\nbase_url = "{openai_server.url}"')
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MMBRIDGE_"))}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "openai_compatible.py"),
            str(config),
            str(ROOT / "examples" / "shapes.png"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "answer:  red" in result.stdout and "verify:  True" in result.stdout
    assert len(openai_server.requests) == 3


def test_example_without_a_key_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MMBRIDGE_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "openai_compatible.py"), str(ROOT / "examples" / "openai.toml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1 and "OPENAI_API_KEY is not set" in result.stderr
