"""Caption metrics: BLEU-1..4, CIDEr-D and ROUGE-L exactly as pycocoevalcap 1.2 computes them.

Inputs are ``hyps: Mapping[id, str]`` and ``refs: Mapping[id, list[str]]``, tokenized first by
:func:`tokenize` (PTB-like, see its docstring). Scores are corpus-level: BLEU from summed
n-gram counts with the closest reference length; CIDEr-D and ROUGE-L as the mean of per-image
scores, CIDEr-D's document frequencies taken over the references of the images scored together.
The per-image parts are exposed too, for bootstrap confidence intervals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["bleu", "bleu_stats", "bleu_from_stats", "cider", "cider_scores", "rouge_l", "rouge_l_scores", "tokenize"]

_CLITIC = re.compile(r"(n't|'s|'re|'ve|'ll|'m|'d)\b")
_TOKEN = re.compile(r"n't|'[a-z]+|[a-z0-9]+(?:[-'./][a-z0-9]+)*|[^\sa-z0-9]")
_CLEAN = re.compile(r"[a-z0-9]+(?: [a-z0-9]+)*")


def tokenize(text: str) -> str:
    """PTB-like: lowercase, clitics split off (``don't`` -> ``do n't``), punctuation tokens dropped.

    The COCO toolkit runs the Java Stanford PTB tokenizer; this reproduces its behaviour on
    ordinary captions without Java. Tokens are joined by single spaces.
    """
    if _CLEAN.fullmatch(text):  # already tokenized: the common case when scoring twice
        return text
    spaced = _CLITIC.sub(r" \1", text.lower())
    # single-character tokens that are not letters or digits are punctuation, which COCO drops
    return " ".join(t for t in _TOKEN.findall(spaced) if len(t) > 1 or t.isalnum())


def _prepare(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]]) -> tuple[list[str], list[list[str]]]:
    missing = [k for k in refs if k not in hyps]
    if missing:
        raise ValueError(f"no hypothesis for {len(missing)} id(s), e.g. {missing[0]!r}")
    ids = list(refs)  # the order pycocoevalcap uses: the references' keys
    return [tokenize(hyps[i]) for i in ids], [[tokenize(r) for r in refs[i]] for i in ids]


class _Grams:
    """Every n-gram of every sentence, numbered densely per order, for vectorized counting.

    ``order[k]`` holds ``(sentence, gram, count)`` arrays for (k+1)-grams, one row per distinct
    gram of a sentence; gram numbers are shared by all sentences, so equal grams compare equal.
    """

    def __init__(self, sentences: list[str], n: int) -> None:
        vocab: dict[str, int] = {}
        words = [s.split() for s in sentences]
        self.lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for w in words for t in w), dtype=np.int64)
        sentence_of = np.repeat(np.arange(len(words)), self.lengths)
        starts = np.concatenate(([0], np.cumsum(self.lengths)[:-1])) if len(words) else np.zeros(0, np.int64)
        position = np.arange(len(ids)) - starts[sentence_of] if len(ids) else np.zeros(0, np.int64)
        padded = np.concatenate((ids, np.zeros(n, np.int64)))
        self.order: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.sizes: list[int] = []
        base = max(len(vocab), 1)
        for k in range(1, n + 1):
            keep = position <= self.lengths[sentence_of] - k
            where = np.nonzero(keep)[0]
            if base**k < 2**62:
                code = np.zeros(len(where), np.int64)
                for j in range(k):
                    code = code * base + padded[where + j]
                _, gram = np.unique(code, return_inverse=True)
            else:  # a vocabulary too large to pack k ids into one integer
                rows = np.stack([padded[where + j] for j in range(k)], axis=1)
                _, gram = np.unique(rows, axis=0, return_inverse=True)
            gram = gram.reshape(-1)
            size = int(gram.max()) + 1 if len(gram) else 0
            key, count = np.unique(sentence_of[where] * max(size, 1) + gram, return_counts=True)
            self.order.append((key // max(size, 1), key % max(size, 1), count))
            self.sizes.append(size)


def _split(grams: _Grams, k: int, first_ref: int) -> tuple[np.ndarray, ...]:
    sentence, gram, count = grams.order[k]
    is_hyp = sentence < first_ref
    return sentence[is_hyp], gram[is_hyp], count[is_hyp], sentence[~is_hyp] - first_ref, gram[~is_hyp], count[~is_hyp]


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query (keys sorted and unique), 0 where a query is absent."""
    if len(keys) == 0:
        return np.zeros(len(queries))
    at = np.clip(np.searchsorted(keys, queries), 0, len(keys) - 1)
    return np.where(keys[at] == queries, values[at], 0)


def _corpus(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]], n: int) -> tuple[_Grams, np.ndarray, int]:
    tokenized_h, tokenized_r = _prepare(hyps, refs)
    if not tokenized_r:
        raise ValueError("nothing to score: no references")
    ref_image = np.repeat(np.arange(len(tokenized_r)), [len(r) for r in tokenized_r])
    if any(len(r) == 0 for r in tokenized_r):
        raise ValueError("every image needs at least one reference")
    grams = _Grams(tokenized_h + [r for rs in tokenized_r for r in rs], n)
    return grams, ref_image, len(tokenized_h)


# -- BLEU --------------------------------------------------------------------------------------


def bleu_stats(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]], n: int = 4) -> np.ndarray:
    """Per image: [hyp length, closest ref length, guess_1..n, correct_1..n] as an (images, 2+2n) array."""
    grams, ref_image, images = _corpus(hyps, refs, n)
    rows = np.zeros((images, 2 + 2 * n), dtype=np.float64)
    test_len = grams.lengths[:images]
    ref_len = grams.lengths[images:]
    rows[:, 0] = test_len
    # closest reference length, ties going to the shorter one, as (|difference|, length) ordering does
    rank = np.abs(ref_len - test_len[ref_image]) * (ref_len.max(initial=0) + 1) + ref_len
    first = np.concatenate(([0], np.cumsum(np.bincount(ref_image, minlength=images))[:-1]))
    rows[:, 1] = np.minimum.reduceat(rank, first) % (ref_len.max(initial=0) + 1)
    for k in range(n):
        rows[:, 2 + k] = np.maximum(test_len - k, 0)
        hs, hg, hc, rs, rg, rc = _split(grams, k, images)
        size = max(grams.sizes[k], 1)
        ref_key = ref_image[rs] * size + rg
        order = np.argsort(ref_key, kind="stable")
        ref_key, rc = ref_key[order], rc[order]
        unique_key, first_of = np.unique(ref_key, return_index=True)
        max_count = np.maximum.reduceat(rc, first_of) if len(rc) else rc
        clipped = np.minimum(hc, _lookup(unique_key, max_count, hs * size + hg))
        rows[:, 2 + n + k] = np.bincount(hs, weights=clipped, minlength=images)
    return rows


def bleu_from_stats(stats: np.ndarray, n: int = 4) -> list[float]:
    """Corpus BLEU-1..n from summed per-image statistics (as pycocoevalcap, with its epsilons)."""
    tiny, small = 1e-15, 1e-9
    totals = stats.sum(axis=0)
    test_len, ref_len = totals[0], totals[1]
    scores, product = [], 1.0
    for k in range(n):
        product *= (totals[2 + n + k] + tiny) / (totals[2 + k] + small)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + tiny) / (ref_len + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def bleu(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]]) -> list[float]:
    """Corpus BLEU-1, -2, -3 and -4."""
    return bleu_from_stats(bleu_stats(hyps, refs))


# -- CIDEr-D ------------------------------------------------------------------------------------


def cider_scores(
    hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]], n: int = 4, sigma: float = 6.0
) -> np.ndarray:
    """Per-image CIDEr-D (clipped tf-idf cosine with a length penalty, x10), as pycocoevalcap computes it."""
    grams, ref_image, images = _corpus(hyps, refs, n)
    refs_per_image = np.bincount(ref_image, minlength=images)
    log_images = math.log(float(images))
    per_ref = np.zeros(len(ref_image))
    # pycocoevalcap measures length in bigrams (its counts2vec adds term frequencies where n == 1)
    bigrams = np.maximum(grams.lengths - 1, 0) if n > 1 else np.zeros_like(grams.lengths)
    delta = (bigrams[:images][ref_image] - bigrams[images:]).astype(np.float64)
    penalty = np.exp(-(delta**2) / (2 * sigma**2))
    for k in range(n):
        hs, hg, hc, rs, rg, rc = _split(grams, k, images)
        size = max(grams.sizes[k], 1)
        # document frequency: in how many images' references a gram occurs
        df = np.bincount(np.unique(ref_image[rs] * size + rg) % size, minlength=size)
        idf = log_images - np.log(np.maximum(1.0, df))
        wh, wr = hc * idf[hg], rc * idf[rg]
        norm_h = np.sqrt(np.bincount(hs, weights=wh**2, minlength=images))
        norm_r = np.sqrt(np.bincount(rs, weights=wr**2, minlength=len(ref_image)))
        hyp_key = hs * size + hg  # sorted, unique: np.unique produced them in this order
        matched = _lookup(hyp_key, wh, ref_image[rs] * size + rg)
        numerator = np.bincount(rs, weights=np.minimum(matched, wr) * wr * (matched != 0), minlength=len(ref_image))
        denominator = norm_h[ref_image] * norm_r
        value = np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1), numerator)
        per_ref += value * penalty
    return np.bincount(ref_image, weights=per_ref, minlength=images) / n / refs_per_image * 10.0


def cider(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]]) -> float:
    """Corpus CIDEr-D: the mean of per-image scores."""
    return float(cider_scores(hyps, refs).mean())


# -- ROUGE-L ------------------------------------------------------------------------------------


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_scores(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]], beta: float = 1.2) -> np.ndarray:
    """Per-image ROUGE-L F-measure against the best-matching reference precision and recall."""
    tokenized_h, tokenized_r = _prepare(hyps, refs)
    scores = np.zeros(len(tokenized_h))
    for i, (hyp, references) in enumerate(zip(tokenized_h, tokenized_r, strict=True)):
        cand = hyp.split(" ")  # pycocoevalcap splits on single spaces
        precision, recall = [], []
        for ref in references:
            ref_tokens = ref.split(" ")
            common = _lcs(ref_tokens, cand)
            precision.append(common / float(len(cand)))
            recall.append(common / float(len(ref_tokens)))
        p, r = max(precision), max(recall)
        scores[i] = ((1 + beta**2) * p * r) / float(r + beta**2 * p) if p != 0 and r != 0 else 0.0
    return scores


def rouge_l(hyps: Mapping[str, str], refs: Mapping[str, Sequence[str]]) -> float:
    """Corpus ROUGE-L: the mean of per-image scores."""
    return float(rouge_l_scores(hyps, refs).mean())
