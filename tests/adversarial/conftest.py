"""The command line run in this process (fast enough to fuzz): exit code, stdout and stderr."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from typing import NamedTuple

import pytest


class Ran(NamedTuple):
    code: int
    out: str
    err: str
    seconds: float

    @property
    def one_line_refusal(self) -> bool:
        """Exit 2 with exactly one line on stderr, and no traceback."""
        return self.code == 2 and self.err.count("\n") == 1 and "Traceback" not in self.err


def cli(*args: str) -> Ran:
    from mmbridge.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["mmbridge", *args]
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ended:
            main()
    finally:
        sys.argv = argv
    code = ended.value.code
    return Ran(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue(), time.perf_counter() - start)
