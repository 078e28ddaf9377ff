"""The exact McNemar test in log space agrees with the integer definition, and stays exact far past it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmbridge.eval.stats import mcnemar_exact


def by_integers(only_a: int, only_b: int) -> float:
    n = only_a + only_b
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n)


def outcomes(only_a: int, only_b: int, both: int = 7) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([True] * only_a + [False] * only_b + [True] * both)
    b = np.array([False] * only_a + [True] * only_b + [True] * both)
    return a, b


@pytest.mark.parametrize("only_a", [0, 1, 2, 5, 13, 40, 97])
@pytest.mark.parametrize("only_b", [0, 1, 3, 8, 21, 60])
def test_agrees_with_the_integer_definition(only_a: int, only_b: int) -> None:
    assert mcnemar_exact(*outcomes(only_a, only_b)) == pytest.approx(by_integers(only_a, only_b), rel=1e-9, abs=1e-300)


def test_large_counts_neither_overflow_nor_lose_the_tail() -> None:
    assert mcnemar_exact(*outcomes(1900, 2100)) == pytest.approx(by_integers(1900, 2100), rel=1e-9)
    # 2^-61000 underflows a float; the log-space sum keeps the tail (the normal approximation: z = 4.04)
    assert 2e-5 < mcnemar_exact(*outcomes(30_000, 31_000)) < 1e-4
