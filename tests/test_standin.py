"""The stand-in API: known answers at a stated accuracy and a real model's price, and never mistaken for one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbridge import Client, ProviderError
from mmbridge.config import CacheConfig, Config
from mmbridge.data import load_dataset

TRUTH = "builtin:shapes?split=val&images=200&seed=4"


def test_it_is_right_as_often_as_stated_and_charges_the_model_price(tmp_path: Path, shapes_png: Path) -> None:
    samples = [s for s in load_dataset(TRUTH, cache_dir=tmp_path) if s.task.value == "vqa"]
    off = Config(cache=CacheConfig(enabled=False, dir=tmp_path))
    with Client("standin", config=off, truth=TRUTH, accuracy=0.8, cache_dir=tmp_path) as api:
        said = [api.ask(s.image, s.question, choices=s.choices) for s in samples]
        with pytest.raises(ProviderError, match="knows only the samples"):
            api.ask(shapes_png, "What is this?")
    right = sum(r.answer == s.answers[0] for r, s in zip(said, samples, strict=True)) / len(samples)
    assert 0.7 < right < 0.9  # 0.8 over a few hundred seeded draws
    assert said[0].model == "stand-in for gpt-4o-mini" and said[0].confidence is None
    assert said[0].usage.cost_usd == pytest.approx((110 * 0.15 + 2 * 0.60) / 1e6)
