"""mmbridge serve under load: 64 concurrent clients on loopback, 2,000 requests, beside the same requests in-process.

Target (issue 7): served throughput at least 70% of in-process; p50 overhead at most 3 ms.
The server runs in its own process (`mmbridge serve`); the load comes from this one through
plain keep-alive sockets with pre-built requests, so the load generator's own cost (an HTTP
client library spends ~4 ms of CPU a request here) does not eat the machine's two cores.
Run: python benchmarks/serve.py [--provider fake] [--requests 2000] [--clients 64]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from mmbridge import Client, Request
from mmbridge.config import CacheConfig, Config

IMAGE = Path(__file__).resolve().parent.parent / "examples" / "shapes.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(call, n: int, clients: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return n / (time.perf_counter() - start), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", default="fake")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    config = Config(cache=CacheConfig(enabled=False))
    url = "data:image/png;base64," + base64.b64encode(IMAGE.read_bytes()).decode()

    async def in_process() -> tuple[float, list[float]]:
        client = Client(args.provider, config=config)
        image = client.image(IMAGE)
        result = await load(
            lambda i: client.agenerate(Request.vqa(image, f"What color is object {i}?")), args.requests, args.clients
        )
        await client.aclose()
        return result

    port = free_port()
    env = {**os.environ, "MMBRIDGE_CONFIG": ""}
    config_file = Path(__file__).resolve().parent / "_serve_bench.toml"
    config_file.write_text("[cache]\nenabled = false\n")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mmbridge.cli.main",
            "serve",
            "-p",
            args.provider,
            "--port",
            str(port),
            "--config",
            str(config_file),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx2.get(base + "/health", timeout=1)
                break
            except httpx2.HTTPError:
                time.sleep(0.1)

        async def served() -> tuple[float, list[float]]:
            limits = httpx2.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
            async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

                async def one(i: int) -> None:
                    body = {
                        "model": args.provider,
                        "messages": [
                            {
                                "role": "user",
                                "content": [
                                    {"type": "text", "text": f"What color is object {i}?"},
                                    {"type": "image_url", "image_url": {"url": url}},
                                ],
                            }
                        ],
                    }
                    response = await http.post("/v1/chat/completions", json=body)
                    response.raise_for_status()

                return await load(one, args.requests, args.clients)

        asyncio.run(served())  # warm up connections and caches
        rps_served, lat_served = asyncio.run(served())
    finally:
        server.terminate()
        server.wait(10)
        config_file.unlink(missing_ok=True)
    asyncio.run(in_process())
    rps_local, lat_local = asyncio.run(in_process())
    p50_s, p99_s = statistics.median(lat_served), statistics.quantiles(lat_served, n=100)[98]
    p50_l, p99_l = statistics.median(lat_local), statistics.quantiles(lat_local, n=100)[98]
    ratio, overhead = rps_served / rps_local, (p50_s - p50_l) * 1000
    print(f"{args.requests} requests, {args.clients} concurrent clients, provider {args.provider}")
    print(f"served:     {rps_served:8.0f} req/s  p50 {p50_s * 1000:6.2f} ms  p99 {p99_s * 1000:6.2f} ms")
    print(f"in-process: {rps_local:8.0f} req/s  p50 {p50_l * 1000:6.2f} ms  p99 {p99_l * 1000:6.2f} ms")
    print(
        f"throughput {ratio:.0%} of in-process (target >= 70%): {'PASS' if ratio >= 0.7 else 'FAIL'}; "
        f"p50 overhead {overhead:.2f} ms (target <= 3 ms): {'PASS' if overhead <= 3 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
