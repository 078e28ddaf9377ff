"""Words and answers the model knows, built from the training data; unknown words map to <unk>."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["SPECIALS", "Vocab", "tokenize", "used_columns"]

PAD, UNK, BOS, EOS, VQA, VERIFY = range(6)
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<vqa>", "<verify>"]
_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lowercase words and single punctuation marks: 'A red circle, left.' -> a red circle , left ."""
    return _TOKEN.findall(text.lower())


def used_columns(tokens: torch.Tensor) -> torch.Tensor:
    """(N,L) token ids cut to the columns some row uses (at least one): padding every row has is no work."""
    length = max(int((tokens != PAD).sum(1).max()), 1) if tokens.numel() else 1
    return tokens[:, :length]


def detokenize(words: Iterable[str]) -> str:
    out = ""
    for word in words:
        out += word if (word in ",.:;!?" or not out) else " " + word
    return out


class Vocab:
    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> Vocab:
        counts = Counter(word for text in texts for word in tokenize(text))
        return cls(SPECIALS + sorted(w for w, c in counts.items() if c >= min_count and w not in SPECIALS))

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_len: int, *, prefix: int | None = None, bos_eos: bool = False) -> list[int]:
        ids = [self.index.get(w, UNK) for w in tokenize(text)]
        if bos_eos:
            ids = [BOS, *ids[: max_len - 2], EOS]
        if prefix is not None:
            ids = [prefix, *ids[: max_len - 1]]
        ids = ids[:max_len]
        return ids + [PAD] * (max_len - len(ids))

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                words.append(self.words[i])
        return detokenize(words)
