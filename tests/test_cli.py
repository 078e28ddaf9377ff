"""The mmbridge command: answers on stdout, one-line errors on stderr, exit codes, light imports."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# without mmbridge-openai the fix is an install; with it (and no key), setting the key
OPENAI_PROBLEM = "OPENAI_API_KEY is not set" if importlib.util.find_spec("mmbridge_openai") else "pip install"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MMBRIDGE_", "OPENAI_"))}
    return subprocess.run(
        [sys.executable, "-m", "mmbridge.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=60,
    )


def test_ask_caption_verify_with_the_fake_provider(shapes_png: Path, tmp_path: Path) -> None:
    ask = run("ask", str(shapes_png), "What color is the circle?", "--provider", "fake", cwd=tmp_path)
    assert ask.returncode == 0 and ask.stdout.strip() == "red"
    data = json.loads(
        run("ask", str(shapes_png), "Which?", "--choices", "circle,square", "--json", cwd=tmp_path).stdout
    )
    assert data["task"] == "vqa" and data["answer"] in ("circle", "square") and data["provider"] == "fake"
    assert run("caption", str(shapes_png), cwd=tmp_path).stdout.strip() == "a picture with something red in it"
    assert run("verify", str(shapes_png), "a red circle", cwd=tmp_path).stdout.strip() in ("true", "false")


def test_config_file_and_environment_choose_the_provider(shapes_png: Path, tmp_path: Path) -> None:
    (tmp_path / "mmbridge.toml").write_text('default = "mine"\n[providers.mine]\ntype = "fake"\nmodel = "fake-9"\n')
    out = run("ask", str(shapes_png), "q?", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)["model"] == "fake-9"
    out = run("ask", str(shapes_png), "q?", "--json", cwd=tmp_path, env={"MMBRIDGE_PROVIDER": "fake"})
    assert json.loads(out.stdout)["model"] == "fake-1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ask", "missing.png", "q?"), "cannot read image missing.png: no such file"),
        (("ask", "{png}", "q?", "--provider", "openai"), OPENAI_PROBLEM),
        (("ask", "{png}", "q?", "--provider", "nosuch"), "unknown provider type 'nosuch'"),
        (("ask", "{png}", "q?", "--choices", "one"), "at least two choices"),
        (("caption", "{png}", "--config", "nowhere.toml"), "does not exist"),
        (("config", "check", "--config", "{bad}"), "unknown key 'sead'"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_traceback(
    args: tuple[str, ...], message: str, shapes_png: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[providers.x]\ntype = "fake"\nsead = 1\n')
    result = run(*(a.format(png=shapes_png, bad=bad) for a in args), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_provider_failures_exit_1(shapes_png: Path, tmp_path: Path) -> None:
    (tmp_path / "mmbridge.toml").write_text('[providers.flaky]\ntype = "fake"\nerror_rate = 1.0\n')
    result = run("ask", str(shapes_png), "q?", "-p", "flaky", cwd=tmp_path)
    assert result.returncode == 1 and "simulated failure" in result.stderr and "Traceback" not in result.stderr


def test_config_check_and_providers(tmp_path: Path) -> None:
    ok = run("config", "check", cwd=tmp_path)
    assert ok.returncode == 0 and "built-in default config" in ok.stdout
    listing = run("providers", cwd=tmp_path, env={"COLUMNS": "200"})
    assert listing.returncode == 0 and "fake" in listing.stdout and "function" in listing.stdout


def test_imports_stay_light() -> None:
    code = (
        "import sys, mmbridge, mmbridge.client, mmbridge.registry; mmbridge.list_providers(); "
        "heavy = [m for m in ('torch', 'openai', 'torchvision') if m in sys.modules]; print(heavy)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
    # --help must not pay for pydantic, Pillow or rich's markdown renderer
    code = (
        "import sys; sys.argv = ['mmbridge', '--help']\nimport mmbridge.cli.main as m\n"
        "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(x for x in ('pydantic', 'PIL', 'numpy', 'markdown_it') if x in sys.modules), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "Usage: mmbridge" in result.stdout and result.stderr.strip() == "[]"


def test_cache_stats_and_clear(shapes_png: Path, tmp_path: Path) -> None:
    assert run("ask", str(shapes_png), "q?", cwd=tmp_path).returncode == 0
    stats = run("cache", "stats", cwd=tmp_path)
    assert stats.returncode == 0 and "answers:   1" in stats.stdout and ".mmbridge/cache" in stats.stdout
    assert "removed 2 entries" in run("cache", "clear", cwd=tmp_path).stdout  # the answer and the file hash
    assert "answers:   0" in run("cache", "stats", cwd=tmp_path).stdout


def test_eval_and_demo_commands(tmp_path: Path) -> None:
    bad = run(
        "eval", "-p", "fake", "--dataset", "builtin:shapes?images=20", "--out", "o", "--tasks", "dance", cwd=tmp_path
    )
    assert bad.returncode == 2 and "unknown task" in bad.stderr
    missing = run("eval", "-p", "nosuch", "--dataset", "builtin:shapes?images=20", "--out", "o", cwd=tmp_path)
    assert missing.returncode == 2 and "unknown provider type 'nosuch'" in missing.stderr
    ok = run(
        "eval",
        "-p",
        "fake",
        "--dataset",
        "builtin:shapes?split=val&images=20",
        "--out",
        "o",
        cwd=tmp_path,
        env={"COLUMNS": "150"},
    )
    assert ok.returncode == 0, ok.stderr
    assert "report:" in ok.stdout and (tmp_path / "o" / "summary.json").is_file()


@pytest.mark.slow
def test_demo_runs_without_configuration(tmp_path: Path) -> None:
    result = run("demo", "--limit", "20", cwd=tmp_path, env={"COLUMNS": "150"})
    assert result.returncode == 0, result.stderr
    assert "prior" in result.stdout and "fake" in result.stdout and "report:" in result.stdout
    assert (tmp_path / "mmbridge-demo" / "report.html").is_file()
    # no OPENAI_API_KEY here: a stand-in takes the API's place, and says so; the cascade is analysed
    assert "api-standin is NOT an API" in result.stdout
    assert "cascade local -> api-standin (vqa" in result.stdout
    assert "Cascade: local then api-standin" in (tmp_path / "mmbridge-demo" / "report.html").read_text()
