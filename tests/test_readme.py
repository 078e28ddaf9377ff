"""What the README shows works: its Python blocks run, and CI runs its test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_blocks_run(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the blocks use paths like examples/shapes.png
    monkeypatch.chdir(tmp_path)  # and may write a cache next to them
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), {"__name__": "readme"})


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line for block in _blocks("bash") for line in block.splitlines() if line.strip()]
    assert len(commands) >= 2, "the README opens with two commands"
    install_and_run, install_and_test = commands[0], commands[1]
    assert "mmbridge " in install_and_run and "pytest" in install_and_test
    assert install_and_test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_config_example_is_a_valid_config(tmp_path: Path) -> None:
    from mmbridge.config import check_config, load_config

    example = next(b for b in _blocks("toml") if b.startswith('default = "gpt"'))
    path = tmp_path / "mmbridge.toml"
    path.write_text(example)
    config = load_config(path)
    assert {"robust", "team"} <= set(config.providers)
    assert check_config(config) == []
