"""mmbridge train refuses what cannot train, with one line and exit 2, before it takes a step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmbridge import Client, UnsupportedTaskError
from mmbridge.config import CacheConfig, Config

from ...test_broken_files import _one_line_error, cli


def _dataset(folder: Path, shapes_png: Path, **extra: object) -> Path:
    shutil.copy(shapes_png, folder / "a.png")
    row = {"id": "q1", "image": "a.png", "task": "vqa", "question": "What colour?", "answers": ["red"], **extra}
    path = folder / "train.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def _train(capsys: pytest.CaptureFixture[str], data: Path | str, out: Path, *more: str) -> tuple[int, str]:
    return cli(capsys, "train", "--data", str(data), "--out", str(out), "--epochs", "1", *more)


def test_empty_data_undecodable_images_and_bad_scenes_are_refused(
    tmp_path: Path, shapes_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    _one_line_error(*_train(capsys, empty, tmp_path / "o1"), "no samples")
    assert not (tmp_path / "o1" / "best").exists()

    data = _dataset(tmp_path, shapes_png)
    (tmp_path / "a.png").write_bytes(shapes_png.read_bytes()[:300])  # a header, then nothing
    _one_line_error(*_train(capsys, data, tmp_path / "o2"), "sample q1", "truncated")

    shutil.copy(shapes_png, tmp_path / "a.png")
    scenes = [{"objects": [{"color": 3}]}, {"width": 64, "height": 64, "objects": [{"color": "red"}]}, "a scene"]
    for scene in scenes:
        bad = _dataset(tmp_path, shapes_png, meta={"scene": scene})
        _one_line_error(*_train(capsys, bad, tmp_path / "o3"), "sample q1", "meta.scene is malformed")


def test_an_output_that_is_a_file_is_refused_before_training(
    tmp_path: Path, shapes_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder")
    _one_line_error(*_train(capsys, _dataset(tmp_path, shapes_png), out), "--out", "is a file")


@pytest.mark.parametrize("damage", ["optimizer.safetensors", "state.json", "model.safetensors"])
def test_resume_from_a_truncated_last_is_refused(
    damage: str, tiny_run: Path, tmp_path: Path, shapes_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    path = out / "last" / damage
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    _one_line_error(*_train(capsys, _dataset(tmp_path, shapes_png), out, "--resume"), str(out / "last"))


def test_a_checkpoint_answers_only_the_tasks_it_was_trained_on(tiny_run: Path, tmp_path: Path, shapes_png) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_run / "best", folder)
    config = json.loads((folder / "config.json").read_text())
    assert config["info"]["tasks"] == ["caption", "verify", "vqa"]  # what the shapes data has
    config["info"]["tasks"] = ["caption"]
    (folder / "config.json").write_text(json.dumps(config))
    with Client("torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(folder)) as client:
        assert client.caption(shapes_png).text is not None
        with pytest.raises(UnsupportedTaskError):
            client.ask(shapes_png, "What colour?")
