"""BLEU and CIDEr-D over 5,000 images x 5 references, beside pycocoevalcap 1.2 in the same run.

Target (issue 6): at least 3x faster, identical values. Both get the same pre-tokenized text
(pycocoevalcap's own tokenizer needs Java). Run: python benchmarks/metrics.py
"""

from __future__ import annotations

import random
import time

from mmbridge.eval.metrics import bleu, cider, tokenize

WORDS = [
    "a",
    "an",
    "the",
    "red",
    "blue",
    "green",
    "yellow",
    "purple",
    "orange",
    "circle",
    "square",
    "triangle",
    "left",
    "right",
    "of",
    "to",
    "is",
    "and",
    "two",
    "three",
    "four",
    "shapes",
    "objects",
    "above",
    "below",
    "next",
    "on",
    "white",
    "background",
    "picture",
    "image",
    "with",
]


def corpus(images: int = 5000, seed: int = 0) -> tuple[dict[str, str], dict[str, list[str]]]:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 16)))

    refs = {f"img{i}": [sentence() for _ in range(5)] for i in range(images)}
    hyps = {k: sentence() for k in refs}
    return hyps, refs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    hyps, refs = corpus()
    hyps = {k: tokenize(v) for k, v in hyps.items()}
    refs = {k: [tokenize(r) for r in v] for k, v in refs.items()}
    res = {k: [v] for k, v in hyps.items()}
    rows = []
    ours_b, t_ours_b = timed(lambda: bleu(hyps, refs))
    theirs_b, t_theirs_b = timed(lambda: Bleu(4).compute_score(refs, res, verbose=0)[0])
    rows.append(("BLEU-1..4", t_ours_b, t_theirs_b, max(abs(a - b) for a, b in zip(ours_b, theirs_b, strict=True))))
    ours_c, t_ours_c = timed(lambda: cider(hyps, refs))
    theirs_c, t_theirs_c = timed(lambda: Cider().compute_score(refs, res)[0])
    rows.append(("CIDEr-D", t_ours_c, t_theirs_c, abs(ours_c - theirs_c)))
    print(f"{'metric':<10}{'mmbridge':>10}{'pycocoevalcap':>15}{'speed-up':>10}{'target':>8}{'max |diff|':>12}")
    ok = True
    for name, ours, theirs, diff in rows:
        ok &= theirs / ours >= 3 and diff <= 1e-6
        print(f"{name:<10}{ours:>9.2f}s{theirs:>14.2f}s{theirs / ours:>9.1f}x{'>= 3x':>8}{diff:>12.1e}")
    print(f"5,000 images x 5 references: {'PASS' if ok else 'FAIL'} (target: >= 3x faster, identical to 1e-6)")


if __name__ == "__main__":
    main()
