"""Training says what it does: --resume without last/, options that clash with last/, forged tensors."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from .conftest import cli

pytest.importorskip("torch")

DATA = "builtin:shapes?split=train&images=20&seed=3"
TINY = ["--d-model", "32", "--n-heads", "2", "--cnn-width", "16", "--image-layers", "1", "--fusion-layers", "1"]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny run started with --resume where nothing was saved yet; its folder and what it printed."""
    folder = tmp_path_factory.mktemp("train")
    args = ["train", "--data", DATA, "--out", str(folder / "run"), "--epochs", "1", "--resume", *TINY]
    ran = cli(*args, "--caption-layers", "1", "--image-tokens", "grid")
    assert ran.code == 0, ran.err
    return folder / "run", ran.err  # the progress display writes to stderr


def test_resume_without_last_says_it_starts_afresh(resumed: tuple[Path, str]) -> None:
    run, printed = resumed
    assert f"--resume: {run / 'last'} does not exist yet, so training starts afresh" in " ".join(printed.split())
    assert (run / "last" / "model.safetensors").is_file()


def test_resume_refuses_options_that_would_build_another_model(resumed: tuple[Path, str]) -> None:
    run, _ = resumed
    before = (run / "last" / "model.safetensors").read_bytes()
    ran = cli("train", "--data", DATA, "--out", str(run), "--resume", "--d-model", "64", "--image-tokens", "shaded")
    assert ran.one_line_refusal, ran.err
    assert "--d-model 64 (it has 32)" in ran.err and "--image-tokens shaded (it has grid)" in ran.err
    assert (run / "last" / "model.safetensors").read_bytes() == before


def test_a_tensor_whose_dtype_was_forged_is_refused(resumed: tuple[Path, str], tmp_path: Path) -> None:
    from mmbridge_torch.checkpoint import load_checkpoint

    from mmbridge.errors import ConfigError

    forged = tmp_path / "forged"
    shutil.copytree(resumed[0] / "best", forged)
    weights = forged / "model.safetensors"
    data = weights.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    first = next(name for name, entry in header.items() if name != "__metadata__" and entry["dtype"] == "F32")
    header[first]["dtype"] = "I32"  # same width: the byte length still matches, the numbers are garbage
    text = json.dumps(header, separators=(",", ":")).encode().ljust(size)
    weights.write_bytes(data[:8] + text + data[8 + size :])
    with pytest.raises(ConfigError, match=f"wrong dtype: {first}"):
        load_checkpoint(forged)
