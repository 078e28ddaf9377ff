"""Ray is asked only for what exists: a pool the cluster cannot hold is refused at once, by name."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmbridge.distributed import RayOptions
from mmbridge.errors import ConfigError


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (RayOptions(actor_gpus=1), "2 actors x --actor-gpus 1 need 2 GPUs; the Ray cluster has 0"),
        (RayOptions(actor_cpus=100), "2 actors x --actor-cpus 100 need 200 CPUs; the Ray cluster has 2"),
        (RayOptions(actors=5, actor_cpus=0.5), "5 actors x --actor-cpus 0.5 need 2.5 CPUs"),
    ],
)
def test_a_pool_larger_than_the_cluster_is_refused_within_seconds(ray_cluster, options: RayOptions, says: str):
    from mmbridge.distributed.cluster import connect

    start = time.monotonic()
    with pytest.raises(ConfigError, match=says.replace(".", r"\.")):
        connect(options)
    assert time.monotonic() - start < 5


def test_ray_options_keep_the_shared_bounds() -> None:
    for bad in ({"actors": 0}, {"actor_cpus": float("nan")}, {"actor_gpus": -1}, {"block_rows": 10**9}):
        with pytest.raises(ValueError, match="is not a"):
            RayOptions(**bad)


def _ray_processes() -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if proc.name.isdigit() and any(mark in line for mark in (b"raylet", b"gcs_server", b"ray::", b"agent.py")):
            found.add(int(proc.name))
    return found


def test_the_drivers_ray_processes_end_with_it(tmp_path: Path) -> None:
    pytest.importorskip("ray.data")
    before = _ray_processes()  # the session's own cluster, if a test started it
    command = [sys.executable, "-m", "mmbridge.cli.main", "eval", "-p", "fake", "--executor", "ray"]
    done = subprocess.run(
        [*command, "--dataset", "builtin:shapes?images=20", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 15
    while (left := _ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)  # polling for processes to exit, not to make a timing pass
    assert not left, f"Ray processes outlived the run: {sorted(left)}"
