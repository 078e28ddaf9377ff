"""Answer many requests on a Ray cluster (pip install 'mmbridge[ray]'); results come back in input order.

Run: python examples/ray_batch.py [RAY_ADDRESS]   (no address: a local cluster is started for the run)
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmbridge import Request
from mmbridge.distributed import RayOptions, ray_batch

PICTURE = Path(__file__).resolve().parent / "shapes.png"


def main(address: str | None = None) -> list:
    questions = ["What color is the circle?", "How many objects are there?", "What shape is the red object?"]
    requests = [Request.vqa(PICTURE, question) for question in questions]
    results = ray_batch(requests, "fake", options=RayOptions(address=address, actors=2))
    for question, result in zip(questions, results, strict=True):
        print(question, "->", f"failed: {result}" if isinstance(result, Exception) else result.text)
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
