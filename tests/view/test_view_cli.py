"""`mmbridge view` from the command line: it serves the folder it is given, and refuses in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

MMBRIDGE = [sys.executable, "-m", "mmbridge.cli.main"]


def test_view_serves_the_runs_of_the_folder_it_is_given(runs_root: Path) -> None:
    process = subprocess.Popen(
        [*MMBRIDGE, "view", str(runs_root), "--port", "0"], stderr=subprocess.PIPE, text=True, cwd=runs_root.parent
    )
    try:
        line = process.stderr.readline()  # "viewing DIR at URL", once it listens
        assert line.startswith(f"viewing {runs_root.resolve()} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].strip()
        with urllib.request.urlopen(url + "api/runs", timeout=30) as response:
            keys = {run["key"] for run in json.loads(response.read())["runs"]}
        assert keys == {"first", "second", "old/third"}
        with urllib.request.urlopen(url, timeout=30) as response:
            assert b"view.js" in response.read()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_folder_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([*MMBRIDGE, "view", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not a folder" in done.stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        done = subprocess.run(
            [*MMBRIDGE, "view", str(tmp_path), "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert time.monotonic() - start < 30
