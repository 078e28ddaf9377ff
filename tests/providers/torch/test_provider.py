"""The torch provider: all three tasks, confidences, closed answer sets, and batching of concurrent calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mmbridge_torch.checkpoint import load_checkpoint

from mmbridge import Client, ConfigError, ImageError, Request
from mmbridge.config import CacheConfig, Config
from mmbridge.data import load_dataset
from mmbridge.types import Task


def _client(tiny_run: Path, **options) -> Client:
    return Client(
        "torch", config=Config(cache=CacheConfig(enabled=False)), checkpoint=str(tiny_run / "best"), **options
    )


def test_three_tasks_with_confidence(tiny_run: Path, shapes_png: Path) -> None:
    with _client(tiny_run) as client:
        vqa = client.ask(shapes_png, "What shape is the red object?")
        assert vqa.answer and 0 <= vqa.confidence <= 1 and vqa.model.startswith("mmbridge-fused")
        verdict = client.verify(shapes_png, "the red object is a circle")
        negated = client.verify(shapes_png, "the red object is not a circle")
        # the label is the likelier side, so its confidence is at least a half, whichever it is
        assert 0.5 <= verdict.confidence <= 1 and 0.5 <= negated.confidence <= 1
        caption = client.caption(shapes_png)
        words = set(load_checkpoint(tiny_run / "best").vocab.words)
        assert caption.text and set(caption.text.split()) <= words and 0 < caption.confidence <= 1


def test_a_small_batch_runs_on_one_thread_without_changing_the_callers_setting(
    tiny_run: Path, shapes_png: Path
) -> None:
    import torch

    before = torch.get_num_threads()
    with _client(tiny_run) as client:  # the worker thread sets its own thread count, not the process's
        assert client.ask(shapes_png, "What shape is the red object?").answer
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, 3])
def test_a_batch_leaves_the_event_loop_a_core_unless_told_its_threads(
    tiny_run: Path, shapes_png: Path, threads: int
) -> None:
    import torch

    with _client(tiny_run, threads=threads) as client:
        provider = client.provider
        while hasattr(provider, "inner"):
            provider = provider.inner
        asks = [Request.vqa(client.image(shapes_png), f"What shape is object {i}?") for i in range(8)]
        assert all(r.answer for r in client.batch(asks, concurrency=8, cache=False, progress=False))
        on_worker = provider.batcher.call(torch.get_num_threads)  # what the batch of 8 ran on
    assert on_worker == (threads or max(1, torch.get_num_threads() - 1))


def test_choices_restrict_the_answer(tiny_run: Path, shapes_png: Path) -> None:
    with _client(tiny_run) as client:
        closed = client.ask(shapes_png, "What shape is the red object?", choices=["Square", "TRIANGLE"])
        assert closed.answer in ("Square", "TRIANGLE")
        unknown = client.ask(shapes_png, "What is it?", choices=["zebra", "giraffe"])
        assert unknown.answer is None and not unknown.parsed  # never trained on these: unanswerable, not guessed


def test_concurrent_calls_share_batches(tiny_run: Path, shapes_png: Path) -> None:
    client = _client(tiny_run, max_wait_ms=20)
    provider = client.provider
    while hasattr(provider, "inner"):
        provider = provider.inner

    async def run() -> list:
        image = client.image(shapes_png)
        return await asyncio.gather(
            *(client.agenerate(Request.vqa(image, f"How many objects {i}?")) for i in range(64))
        )

    before = provider.batches
    results = asyncio.run(run())
    assert len(results) == 64 and provider.batches - before <= 4  # 64 calls, a few forward passes
    client.close()


def test_beam_search_finds_captions_the_model_likes_at_least_as_well_as_greedy(tiny_run: Path, tmp_path: Path) -> None:
    fresh = "builtin:shapes?split=test&images=160&seed=9"  # 16 pictures the tiny model never saw
    samples = [s for s in load_dataset(fresh, cache_dir=tmp_path) if s.task is Task.CAPTION][:16]
    requests = [s.to_request() for s in samples]
    with _client(tiny_run) as greedy, _client(tiny_run, beam_size=4) as beam:
        by_greedy = greedy.batch(requests, progress=False)
        by_beam = beam.batch(requests, progress=False)
    # confidence is the caption's mean token probability: the score both searches maximise
    greedy_mean = sum(r.confidence for r in by_greedy) / len(samples)
    beam_mean = sum(r.confidence for r in by_beam) / len(samples)
    assert len(samples) == 16 and beam_mean >= greedy_mean - 1e-6, (beam_mean, greedy_mean)
    assert sum(b.confidence >= g.confidence - 1e-6 for b, g in zip(by_beam, by_greedy, strict=True)) >= 12


def test_a_missing_checkpoint_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs model.safetensors and config.json"):
        Client("torch", checkpoint=str(tmp_path))


def test_a_broken_image_fails_only_its_own_request_in_a_shared_batch(tiny_run: Path, shapes_png: Path) -> None:
    client = _client(tiny_run, max_wait_ms=200)  # time enough for all 16 to join one batch
    provider = client.provider
    while hasattr(provider, "inner"):
        provider = provider.inner
    truncated = shapes_png.read_bytes()[:400]  # a valid header, pixels cut short: fails only when decoded
    requests = [Request.vqa(client.image(shapes_png), f"How many objects {i}?") for i in range(15)]
    requests.insert(7, Request.vqa(client.image(truncated), "How many objects?"))
    before = provider.batches
    results = client.batch(requests, concurrency=16)
    client.close()
    assert provider.batches - before == 1  # they really shared a forward pass
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [7] and isinstance(results[7], ImageError) and "truncated" in str(results[7])


def test_a_torch_failure_is_a_provider_error_and_fallback_moves_on(
    tiny_run: Path, shapes_png: Path, tmp_path: Path, monkeypatch
) -> None:
    import torch

    from mmbridge import ProviderError

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr("mmbridge_torch.model.GridModel.encode_images", out_of_memory)
    with (
        _client(tiny_run) as client,
        pytest.raises(ProviderError, match="out of memory on a batch of 1; lower max_batch"),
    ):
        client.ask(shapes_png, "What shape is the red object?")
    config = tmp_path / "mmbridge.toml"
    config.write_text(
        f'[cache]\nenabled = false\n[providers.local]\ntype = "torch"\ncheckpoint = "{tiny_run / "best"}"\n'
        '[providers.both]\ntype = "fallback"\nproviders = ["local", "fake"]\n'
    )
    with Client.from_config(config, "both") as client:
        assert client.ask(shapes_png, "What color is the circle?").provider == "fake"
