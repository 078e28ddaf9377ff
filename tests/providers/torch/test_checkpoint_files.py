"""A damaged or tampered checkpoint folder is one ConfigError (exit 2 from the CLI), never a crash."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from mmbridge import Client, ConfigError
from mmbridge.config import CacheConfig, Config

from ...test_broken_files import _one_line_error, cli


def _edit_config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        change(config)
        (folder / "config.json").write_text(json.dumps(config))

    return edit


def _weights(data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / "model.safetensors"
        path.write_bytes(data(path.read_bytes()))

    return edit


TAMPERED = {
    "truncated weights": _weights(lambda b: b[: len(b) // 2]),
    "empty weights": _weights(lambda b: b""),
    "garbage weights": _weights(lambda b: b"\x13\x37 not tensors " * 100),
    "header length 10^15": _weights(lambda b: struct.pack("<Q", 10**15) + b[8:]),
    "config not json": lambda f: (f / "config.json").write_text("{model: oops"),
    "config is a list": lambda f: (f / "config.json").write_text(json.dumps([(f / "config.json").read_text()])),
    "missing model key": _edit_config(lambda c: c["model"].pop("vocab_size")),
    "unknown model key": _edit_config(lambda c: c["model"].update(wings=2)),
    "shape mismatch": _edit_config(lambda c: c["model"].update(d_model=c["model"]["d_model"] * 2)),
    "absurd width": _edit_config(lambda c: c["model"].update(d_model=10**9)),
    "absurd depth": _edit_config(lambda c: c["model"].update(fusion_layers=10**6)),
    "vocab of the wrong type": _edit_config(lambda c: c.update(vocab="a b c")),
    "vocab of numbers": _edit_config(lambda c: c.update(vocab=list(range(len(c["vocab"]))))),
    "answers not a list": _edit_config(lambda c: c.update(answers={"red": 1})),
    "string for a size": _edit_config(lambda c: c["model"].update(n_heads="4")),
    "unknown image tokens": _edit_config(lambda c: c["model"].update(image_tokens="blobs")),
    "grid weights said to be objects": _edit_config(lambda c: c["model"].update(image_tokens="objects")),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_a_tampered_checkpoint_is_one_config_error(case: str, tiny_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_run / "best", folder)
    TAMPERED[case](folder)
    with pytest.raises(ConfigError, match=f"checkpoint {folder}: .*; retrain it") as info:
        Client("torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(folder))
    assert "\n" not in str(info.value)


def test_the_cli_says_it_in_one_line(tiny_run: Path, tmp_path: Path, shapes_png: Path, capsys) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_run / "best", folder)
    TAMPERED["header length 10^15"](folder)
    config = tmp_path / "mmbridge.toml"
    config.write_text(f'[providers.local]\ntype = "torch"\ncheckpoint = "{folder}"\n')
    code, err = cli(capsys, "ask", str(shapes_png), "What shape?", "-p", "local", "-c", str(config))
    _one_line_error(code, err, "model.safetensors is damaged")


@pytest.mark.parametrize("device", ["foo", "cuda:99", "meta", "cuda:-1"])
def test_a_bad_device_is_one_config_error(device: str, tiny_run: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match=f"device {device!r}"):
        Client(
            "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tiny_run / "best"), device=device
        )
    code, err = cli(
        capsys, "train", "--data", "builtin:shapes?images=6", "--out", str(tmp_path / "o"), "--device", device
    )
    _one_line_error(code, err, "device")
