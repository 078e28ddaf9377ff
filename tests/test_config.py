"""mmbridge.toml: search order, the built-in default, and errors that name file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbridge import Client, ConfigError, load_config
from mmbridge.config import check_config

GOOD = """
default = "gpt"
[cache]
dir = "cache-here"
[retry]
max_attempts = 3
[providers.gpt]
type = "openai"
model = "gpt-4o-mini"
[providers.quick]
type = "fake"
seed = 7
max_concurrency = 2
[providers.safe]
type = "fallback"
providers = ["quick", "fake"]
"""


def _write(tmp_path: Path, text: str, name: str = "mmbridge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_file_parses(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.default == "gpt" and config.retry.max_attempts == 3
    assert config.cache.dir == tmp_path / "cache-here"  # relative to the file
    name, entry = config.provider("quick")
    assert entry.type == "fake" and entry.options == {"seed": 7} and entry.max_concurrency == 2
    assert config.provider("fake")[1].type == "fake"  # built-in entries stay available


def test_no_file_gives_the_built_in_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMBRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("MMBRIDGE_PROVIDER", raising=False)
    config = load_config()
    assert config.source == "built-in default config" and config.default == "fake"
    assert check_config(config) == []


def test_search_order_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMBRIDGE_PROVIDER", raising=False)
    local = _write(tmp_path, 'default = "local-file"')
    other = _write(tmp_path, 'default = "env-file"', "other.toml")
    explicit = _write(tmp_path, 'default = "explicit"', "explicit.toml")
    monkeypatch.delenv("MMBRIDGE_CONFIG", raising=False)
    assert load_config().default == "local-file" and load_config().source == str(Path(local.name))
    monkeypatch.setenv("MMBRIDGE_CONFIG", str(other))
    assert load_config().default == "env-file"
    assert load_config(explicit).default == "explicit"
    monkeypatch.setenv("MMBRIDGE_PROVIDER", "quick")
    assert load_config(explicit).default == "quick"


BAD = {
    "unknown top-level key": ('defualt = "fake"', "unknown key 'defualt'"),
    "wrong type": ('[retry]\nmax_attempts = "five"', "retry.max_attempts"),
    "out of range": ("[retry]\nmax_attempts = 0", "greater than or equal to 1"),
    "unknown cache key": ("[cache]\nsize = 3", "allowed keys: dir, enabled, ttl_s"),
    "not toml": ("default = ", "not valid TOML"),
    "provider without type": ('[providers.x]\nmodel = "m"', "missing required key 'providers.x.type'"),
    "fallback without members": ('[providers.x]\ntype = "fallback"', "fallback needs providers"),
    "negative concurrency": ('[providers.x]\ntype = "fake"\nmax_concurrency = 0', "max_concurrency"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_name_the_file_and_the_key(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_explicit_or_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("MMBRIDGE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"\$MMBRIDGE_CONFIG"):
        load_config()


def test_provider_options_are_checked_against_the_plugin(tmp_path: Path) -> None:
    path = _write(tmp_path, '[providers.quick]\ntype = "fake"\nsead = 3\n[providers.x]\ntype = "nosuch"')
    problems = check_config(load_config(path))
    assert any("providers.quick: unknown key 'sead'; allowed keys:" in p and "seed" in p for p in problems)
    assert any("unknown provider type 'nosuch'" in p for p in problems)
    with pytest.raises(ConfigError, match="unknown key 'sead'"):
        Client.from_config(path, "quick")


def test_a_fallback_cannot_contain_itself(tmp_path: Path) -> None:
    path = _write(tmp_path, '[providers.loop]\ntype = "fallback"\nproviders = ["fake", "loop"]')
    with pytest.raises(ConfigError, match="cannot include itself"):
        Client.from_config(path, "loop")
