"""Every number a user gives is bounded where it is read: one line and exit 2 past the bound, the
same bound from the command line and from a config file, never a traceback, never a wait without end."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbridge.config import parse_config
from mmbridge.errors import ConfigError

from .conftest import cli

SHAPES = "builtin:shapes?images=20"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["data", "shapes", "--out", "d", "--images", "10", "--size", "100000"], "--size': '100000' is not a whole"),
        (["data", "shapes", "--out", "d", "--images", "1000000000000"], "from 3 to 1,000,000"),
        (["eval", "-p", "fake", "--dataset", SHAPES, "--out", "o", "--seed", "-1"], "from 0 to 4,294,967,295"),
        (["eval", "-p", "fake", "--dataset", SHAPES, "--out", "o", "--batch", "--batch-poll", "inf"], "at most 86,400"),
        (["train", "--data", SHAPES, "--out", "t", "--max-minutes", "nan"], "--max-minutes"),
        (["serve", "-p", "fake", "--request-timeout", "inf"], "--request-timeout"),
    ],
)
def test_a_number_past_its_bound_is_one_line(args: list[str], says: str, tmp_path: Path) -> None:
    ran = cli(*args)
    assert ran.one_line_refusal and says in ran.err, ran.err
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()  # refused before any work


def test_a_config_cannot_make_a_wait_endless(tmp_path: Path) -> None:
    (tmp_path / "mmbridge.toml").write_text('[providers.slow]\ntype = "fake"\ndelay_s = inf\n')
    ran = cli("ask", "x.png", "what?", "-p", "slow")
    assert ran.one_line_refusal and "delay_s: Input should be less than or equal to 86400 (got inf)" in ran.err
    for section, key in (("retry", "max_wait_s"), ("retry", "deadline_s"), ("images", "remote_timeout_s")):
        with pytest.raises(ConfigError, match=f"{section}.{key}"):
            parse_config({section: {key: float("inf")}})
    with pytest.raises(ConfigError, match="less than or equal to 86400"):
        parse_config({"retry": {"max_wait_s": 86_401}})


#: commands whose every option parses, then stop at once on a path that is a file (or one provider
#: too few): a number inside its bound reaches that refusal, one outside is refused by name
COMMANDS = {
    "data shapes": (
        ["data", "shapes", "--out", "taken"],
        ["--images", "--seed", "--size", "--height", "--antialias", "--jpeg", "--gradient"],
    ),
    "eval": (
        ["eval", "-p", "fake", "--dataset", SHAPES, "--out", "taken"],
        ["--limit", "--seed", "--batch-poll", "--actors", "--actor-cpus", "--actor-gpus", "--concurrency"],
    ),
    "train": (
        ["train", "--data", SHAPES, "--out", "taken"],
        [
            "--epochs",
            "--max-minutes",
            "--seed",
            "--batch-images",
            "--lr",
            "--validate-every",
            "--max-answers",
            "--image-size",
            "--d-model",
            "--n-heads",
            "--cnn-width",
            "--image-layers",
            "--fusion-layers",
            "--caption-layers",
        ],
    ),
    "cascade fit": (
        ["cascade", "fit", "-p", "fake", "--dataset", SHAPES, "--out", "taken"],
        ["--target-accuracy", "--budget-usd", "--limit", "--seed"],
    ),
    "serve": (
        ["serve", "-p", "no-such-provider"],
        [
            "--port",
            "--max-body-mb",
            "--max-concurrency",
            "--max-waiting",
            "--read-timeout",
            "--request-timeout",
            "--shutdown-timeout",
        ],
    ),
}

values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "1e3", "0x10", "1_000", "NaN", "-0", "１２", "9" * 400]),
)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_numbers_give_exit_2_and_one_line_never_a_traceback(command: str, data: st.DataObject, tmp_path: Path):
    base, options = COMMANDS[command]
    (tmp_path / "taken").write_text("a file")
    option = data.draw(st.sampled_from(options))
    value = data.draw(values)
    ran = cli(*base, option, value)
    assert ran.one_line_refusal, (option, value, ran.err)
    # refused by name, or read and then stopped where the command was meant to stop
    assert option in ran.err or any(end in ran.err for end in ("is a file", "give two providers", "no-such")), ran.err
    assert ran.seconds < 10, (option, value, ran.seconds)
    assert (tmp_path / "taken").read_text() == "a file"
