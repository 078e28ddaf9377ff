"""A tiny image-text-to-text model written to a folder, for tests, benchmarks and examples that must
not download anything: a LLaVA of a 1-layer CLIP vision tower and a 2-layer Llama, random weights, a
word-level tokenizer built with ``tokenizers`` and a small chat template. Loaded like any other model
(``model = "<folder>"``); its answers are random but deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WORDS", "write_tiny_model"]

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "<image>", "<|user|>", "<|assistant|>", "<|end|>"]
#: the tokenizer's words: enough for the built-in shapes' questions, answers and the default prompts
WORDS = (  # one string, split where it is used
    "yes no true false red green blue orange purple yellow gray circle square triangle left right top bottom "
    "a an the is are there what which how many color shape of in on image object objects picture closest "
    "furthest nearest to from one two three four five six zero answer question using single word or phrase "
    "options option's with describe sentence short this statement image? no. ? . , :"
)
TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|> ' }}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<image> ' }}{% else %}{{ c['text'] + ' ' }}{% endif %}{% endfor %}"
    "{{ '<|end|> ' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|> ' }}{% endif %}"
)


def write_tiny_model(folder: str | Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    """Save a tiny random LLaVA and its processor into ``folder`` (about 200 KB); returns the folder."""
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {word: i for i, word in enumerate(dict.fromkeys(SPECIAL + WORDS.split()))}
    words = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    words.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    side, patch = 32, 8
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side}),
        tokenizer=tokenizer,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, which the "default" strategy then drops
        chat_template=TEMPLATE if chat_template else None,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=side,
            patch_size=patch,
        ),
        text_config=LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            vocab_size=len(vocab),
            max_position_embeddings=512,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_id=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    folder = Path(folder)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
