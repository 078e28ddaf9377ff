"""Plugins: the core's own, a third-party package built and installed by the test, and install hints."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmbridge import Client, ConfigError, ProviderNotInstalledError, UnsupportedTaskError
from mmbridge.registry import build_provider, list_providers, load_plugin

PLUGIN = """
from pydantic import BaseModel, ConfigDict
from mmbridge.registry import ProviderPlugin

class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    greeting: str = "acme says"

plugin = ProviderPlugin(factory="acme_mmbridge.impl:build", options=EchoOptions,
                        description="echoes the prompt", tasks=frozenset({"vqa"}), package="acme-mmbridge")
needy = ProviderPlugin(factory="acme_mmbridge.impl:build", options=EchoOptions,
                       requires=("acme_missing_dependency",), package="acme-mmbridge")
"""
IMPL = """
from mmbridge import BaseProvider, Response, Task

class Echo(BaseProvider):
    capabilities = frozenset({Task.VQA})

    def __init__(self, name, options):
        super().__init__(name)
        self.greeting = options.greeting

    async def _generate(self, request):
        text = f"{self.greeting} {request.question}"
        return Response(task=request.task, text=text, answer=text, provider=self.name, model="echo-1")

def build(name, options):
    return Echo(name, options)
"""


def _build_wheel(directory: Path) -> Path:
    """A minimal, valid wheel written by hand: no build backend or network needed."""
    dist = "acme_mmbridge-0.1.dist-info"
    files = {
        "acme_mmbridge/__init__.py": PLUGIN,
        "acme_mmbridge/impl.py": IMPL,
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: acme-mmbridge\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": textwrap.dedent("""\
            [mmbridge.providers]
            acme = acme_mmbridge:plugin
            needy = acme_mmbridge:needy
            broken = acme_mmbridge:nothing_here
            """),
    }
    files[f"{dist}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist}/RECORD"])
    wheel = directory / "acme_mmbridge-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture(scope="module")
def third_party(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("acme")
    target = root / "site"
    wheel = _build_wheel(root)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    return target


@pytest.fixture
def installed(third_party: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(third_party))
    yield third_party
    for name in [m for m in sys.modules if m.startswith("acme_mmbridge")]:
        del sys.modules[name]


def test_core_providers_are_registered_and_first_party_ones_hinted() -> None:
    rows = {row.type: row for row in list_providers()}
    assert rows["fake"].status == "ready" and rows["function"].status == "ready"
    for name, package in (("openai", "mmbridge-openai"), ("torch", "mmbridge-torch")):
        if rows[name].status == "not installed":
            assert rows[name].install is not None and rows[name].install.startswith("pip install ")
            assert package.removeprefix("mmbridge-") in rows[name].install


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ProviderNotInstalledError, match="unknown provider type 'nope'; known types: .*fake"):
        load_plugin("nope")


def test_third_party_provider_is_discovered_and_usable(installed: Path, shapes_png: Path) -> None:
    rows = {row.type: row for row in list_providers()}
    assert rows["acme"].status == "ready" and rows["acme"].package == "acme-mmbridge"
    assert rows["needy"].status == "missing dependency" and rows["needy"].install == "pip install acme-mmbridge"
    assert rows["broken"].status == "broken"
    assert "acme_mmbridge.impl" not in sys.modules  # listing imports nothing heavy
    with Client("acme", greeting="hello") as client:
        assert client.ask(shapes_png, "who?").text == "hello who?"
        with pytest.raises(UnsupportedTaskError, match="does not support task 'caption'"):
            client.caption(shapes_png)
    with pytest.raises(ConfigError, match="unknown key 'greting'; allowed keys: greeting"):
        Client("acme", greting="x")
    with pytest.raises(
        ProviderNotInstalledError, match="needs acme_missing_dependency.*fix: pip install acme-mmbridge"
    ):
        build_provider("needy", "needy", {})


def test_cli_lists_the_third_party_provider(third_party: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(third_party), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "mmbridge.cli.main", "providers"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "acme-mmbridge" in out and "echoes the prompt" in out and "missing dependency" in out
