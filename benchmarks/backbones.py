"""Feature extraction speed of each photo backbone on this machine, fp32 and bf16 autocast, beside the small CNN.

Issue 13 asks for images/s of feature extraction per backbone (no target). A frozen backbone runs
once per image per training run (features are cached), and once per image when answering. Speed
does not depend on the weights' values, so the trunks run with random weights (nothing is
downloaded). fp32 and bf16 autocast alternate round by round; the figures are medians.

Run: python benchmarks/backbones.py [--image-size 224] [--batch 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from mmbridge_torch.backbones import BACKBONES
from mmbridge_torch.device import autocast, bf16_helps
from mmbridge_torch.model import ModelConfig, build_model


def rate(encoder: torch.nn.Module, images: torch.Tensor, bf16: bool, repeats: int = 3) -> float:
    with torch.inference_mode(), autocast(torch.device("cpu"), bf16):
        encoder(images[:4])  # warm up: allocator, kernels
        start = time.perf_counter()
        for _ in range(repeats):
            encoder(images)
    return repeats * len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modes = [False, True] if bf16_helps(torch.device("cpu")) else [False]
    print(f"{torch.get_num_threads()} threads; bf16 autocast {'measured' if len(modes) == 2 else 'not faster here'}")
    cases = [("cnn (built-in, 64 px)", "cnn", 64)] + [
        (f"{n} ({args.image_size} px)", n, args.image_size) for n in BACKBONES
    ]
    for label, backbone, size in cases:
        model = build_model(ModelConfig(vocab_size=8, answer_size=2, backbone=backbone, image_size=size)).eval()
        encoder = model.encoder.features if backbone != "cnn" else model.encoder
        images = torch.randint(0, 256, (args.batch, 3, size, size), dtype=torch.uint8)
        seen: dict[bool, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                seen[mode].append(rate(encoder, images, mode))
        figures = ", ".join(f"{'bf16' if m else 'fp32'} {statistics.median(v):7.1f}" for m, v in seen.items())
        print(f"  {label:32s} images/s: {figures}")


if __name__ == "__main__":
    main()
