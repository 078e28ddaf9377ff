"""The hf provider on a tiny model written here: likelihood-scored choices, batching, confidences,
failures confined to their request, and one line for each way a model fails to load."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmbridge_hf import HFOptions
from mmbridge_hf.loading import HFLoadError
from mmbridge_hf.prompts import chat_text
from mmbridge_hf.provider import HFProvider
from mmbridge_hf.testing import WORDS

from mmbridge import Client, ImageError, Request
from mmbridge.config import CacheConfig, Config
from mmbridge.errors import ConfigError, ProviderError
from mmbridge.offline import find_layer

COLOURS = ["red", "green", "blue", "orange", "purple", "yellow", "gray"]


def hf(model: Path, **options: object) -> Client:
    return Client("hf", config=Config(cache=CacheConfig(enabled=False)), model=str(model), **options)


def model_of(client: Client) -> HFProvider:
    found = find_layer(client.provider, HFProvider)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def client(tiny_vlm: Path):
    with hf(tiny_vlm) as opened:
        yield opened


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    choices=st.lists(st.sampled_from(WORDS.split() + ["sky blue", "not a word"]), min_size=2, max_size=6, unique=True),
    question=st.sampled_from(["What color is the circle?", "Which shape is on the left?", "anything at all"]),
)
def test_choices_always_return_one_of_them_with_probabilities_summing_to_one(
    client: Client, shapes_png: Path, choices: list[str], question: str
) -> None:
    request = Request.vqa(client.image(shapes_png), question, choices=choices)
    [scored] = model_of(client).score_choices([request], [request.image.pil])
    assert scored.choices == tuple(choices) and sum(scored.probabilities) == pytest.approx(1.0)
    answer = client.ask(shapes_png, question, choices=choices)
    assert answer.answer in choices and answer.text in choices
    assert answer.confidence == pytest.approx(max(scored.probabilities))
    assert scored.probabilities[choices.index(answer.answer)] == pytest.approx(max(scored.probabilities))


def test_verify_compares_yes_with_no(client: Client, shapes_png: Path) -> None:
    answer = client.verify(shapes_png, "There is a red circle.")
    assert answer.label in (True, False) and 0.5 <= answer.confidence <= 1.0
    assert answer.usage.cost_usd == 0 and answer.usage.input_tokens > 16  # the picture's 16 tokens and the text


def test_open_answers_and_captions_are_generated_with_usage(client: Client, shapes_png: Path) -> None:
    answer = client.ask(shapes_png, "What color is the circle?")
    assert answer.text and 0 < answer.confidence <= 1  # the first token's probability
    caption = client.caption(shapes_png)
    assert caption.text and 0 < caption.usage.output_tokens <= 32 and caption.usage.cost_usd == 0


@torch.inference_mode()
def test_an_open_answers_confidence_is_its_first_tokens_probability(client: Client, shapes_png: Path) -> None:
    provider = model_of(client)
    request = Request.vqa(client.image(shapes_png), "What color is the circle?")
    batch = provider.processor(
        text=[chat_text(provider.processor, request, {})], images=[[request.image.pil]], return_tensors="pt"
    )
    width = batch["input_ids"].shape[1]
    done = provider.net.generate(
        **batch, max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True
    )
    expected = torch.softmax(done.scores[0].float(), dim=-1)[0, done.sequences[0, width]]
    assert client.ask(shapes_png, request.question).confidence == pytest.approx(float(expected), rel=1e-4)


def test_concurrent_requests_share_passes_and_answer_as_they_would_alone(tiny_vlm: Path, shapes_png: Path) -> None:
    questions = [(f"What color is object {i}?", COLOURS[: 2 + i % 5]) for i in range(12)]
    with hf(tiny_vlm, batch_size=64) as alone:
        sequential = [alone.ask(shapes_png, q, choices=c) for q, c in questions]
        opens = [alone.ask(shapes_png, q) for q, _ in questions[:4]]
    with hf(tiny_vlm, batch_size=64, max_wait_ms=200) as together:
        provider = model_of(together)
        before = provider.batches
        requests = [Request.vqa(together.image(shapes_png), q, choices=c) for q, c in questions]
        requests += [Request.vqa(together.image(shapes_png), q) for q, _ in questions[:4]]
        batched = together.batch(requests, concurrency=16)
        assert provider.batches - before <= 2  # 16 requests: one or two passes, not 16
    for one, many in zip(sequential + opens, batched, strict=True):
        assert many.text == one.text
        assert many.confidence == pytest.approx(one.confidence, rel=1e-3, abs=1e-4)  # padding changes nothing


def test_a_corrupt_picture_fails_only_its_own_request(tiny_vlm: Path, shapes_png: Path) -> None:
    truncated = shapes_png.read_bytes()[:400]  # a valid header, pixels cut short: fails only when decoded
    with hf(tiny_vlm, batch_size=16, max_wait_ms=200) as client:
        requests = [Request.vqa(client.image(shapes_png), f"What color {i}?", choices=COLOURS[:3]) for i in range(7)]
        requests.insert(3, Request.vqa(client.image(truncated), "What color?", choices=COLOURS[:3]))
        results = client.batch(requests, concurrency=8)
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [3] and isinstance(results[3], ImageError)


def test_out_of_memory_is_a_provider_error_naming_the_option(tiny_vlm: Path, shapes_png: Path, monkeypatch) -> None:
    import torch

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    with hf(tiny_vlm) as client:
        monkeypatch.setattr(type(model_of(client).net), "forward", out_of_memory)
        with pytest.raises(ProviderError, match="out of memory on a batch of 1; lower batch_size"):
            client.ask(shapes_png, "What color?", choices=["red", "blue"])


def test_the_cache_key_names_the_weights(tiny_vlm: Path, tmp_path: Path) -> None:
    from mmbridge_hf.testing import write_tiny_model

    other = write_tiny_model(tmp_path / "other", seed=1)
    with hf(tiny_vlm) as a, hf(other) as b, hf(tiny_vlm, max_new_tokens=8) as c:
        ids = [model_of(x).identity for x in (a, b, c)]
    assert ids[0]["revision"] != ids[1]["revision"]  # other weights, same shapes
    assert ids[0]["revision"] == ids[2]["revision"] and ids[0] != ids[2]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        ("missing", "is not a folder"),
        ("causal", "is not an image-text-to-text model"),
        ("no-template", "without a chat template"),
        ("hub", "HF_HUB_OFFLINE is set"),
    ],
)
def test_each_way_a_model_fails_to_load_is_one_line(tmp_path: Path, make: str, says: str) -> None:
    from mmbridge_hf.testing import write_tiny_model

    model = str(tmp_path / "nothing-here")
    if make == "causal":
        from transformers import LlamaConfig, LlamaForCausalLM

        LlamaForCausalLM(
            LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64)
        ).save_pretrained(tmp_path / "causal")
        model = str(tmp_path / "causal")
    elif make == "no-template":
        model = str(write_tiny_model(tmp_path / "plain", chat_template=False))
    elif make == "hub":
        model = "someone/not-downloaded-vlm"
    with pytest.raises(HFLoadError, match=says) as caught:
        Client("hf", model=model)
    assert isinstance(caught.value, ConfigError) and "\n" not in str(caught.value)


def test_unknown_prompt_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown key 'vqa_open'"):
        Client("hf", model="x", prompts={"vqa_open": "{question}"})


def test_the_cli_exits_2_with_one_line_when_the_model_is_not_there(tmp_path: Path, shapes_png: Path) -> None:
    import subprocess

    config = tmp_path / "mmbridge.toml"
    config.write_text(f'[providers.vlm]\ntype = "hf"\nmodel = "{tmp_path / "gone"}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "mmbridge.cli.main", "ask", str(shapes_png), "What?", "-p", "vlm", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not a folder" in done.stderr


def test_options_are_bounded() -> None:
    with pytest.raises(ValueError):
        HFOptions(model="x", batch_size=0)
    with pytest.raises(ValueError):
        HFOptions(model="x", dtype="float8")


def test_async_calls_share_the_batcher(client: Client, shapes_png: Path) -> None:
    async def main() -> list[str]:
        calls = [client.aask(shapes_png, "What color?", choices=["red", "blue"]) for _ in range(4)]
        return [r.answer for r in await asyncio.gather(*calls)]

    assert len(set(asyncio.run(main()))) == 1
