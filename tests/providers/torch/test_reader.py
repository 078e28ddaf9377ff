"""The object reader's answer-only signals, and the input side chosen for flat-colour pictures."""

from __future__ import annotations

import pytest
import torch
from mmbridge_torch.model import ModelConfig
from mmbridge_torch.reader import HOP1, ObjectReader, Trace, _matches
from mmbridge_torch.text import TEXT_ENCODERS, build_text_encoder
from mmbridge_torch.token_choice import choose_image_tokens

from mmbridge.data import load_dataset


def _read(reader: ObjectReader, objects: int = 5) -> tuple[torch.Tensor, Trace]:
    torch.manual_seed(0)
    valid = torch.ones(2, objects, dtype=torch.bool)
    valid[1, -2:] = False  # the second picture holds fewer objects
    tokens = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0], [3, 8, 9, 2]])
    return reader(
        torch.randn(2, objects, 16), torch.rand(2, objects, 2) * 2 - 1, valid, torch.tensor([0, 1, 1]), tokens
    )


def test_the_mixture_loss_moves_attention_and_reads_one_forward() -> None:
    reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2).train()
    state, trace = _read(reader)
    assert state.shape == (3, 32)
    targets = torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0]])  # the first two queries' answers
    vqa = torch.tensor([True, True, False])
    loss = reader.mixture_loss(trace, vqa, targets)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    # the gradient reaches hop 1's and hop 2's queries: the answer moves where they look
    assert reader.q1.weight.grad.abs().sum() > 0 and reader.q2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("first_hop", [False, True])
def test_hop_one_explains_the_answer_only_when_asked(first_hop: bool) -> None:
    # without the grounding contrast (pictures that share their colours) hop 1 learns what a
    # question names this way; with it, the term stays off, as it pulls hop 1 off the named object
    reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2).train()
    trace = _read(reader)[1]
    targets = torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0]])
    reader.mixture_loss(trace, torch.tensor([True, True, False]), targets, first_hop=first_hop).backward()
    reached = reader.explain1[0].weight.grad is not None
    assert reached == first_hop
    assert reader.explain[0].weight.grad.abs().sum() > 0  # hop 2's term is always there


def test_hop_two_slopes_find_the_nearest_object_other_than_the_named_one() -> None:
    # hop 1 made to choose object 0, hop 2's dot products silenced: its "near" slope alone must
    # pick object 3, nearest to object 0 but not object 0 itself
    reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2).train()
    with torch.no_grad():
        for layer in (reader.q1, reader.word_keys, reader.q2):
            layer.weight.zero_()
        reader.q1.bias.zero_()
        reader.text.embed.weight.zero_()
        reader.text.embed.weight[3, 0] = 1.0  # the question's first word names object 0 for both heads
        reader.word_keys.weight[[0, 8], 0] = 50.0  # each head's first feature
        reader.q2.bias.zero_()
        reader.k1.weight.copy_(torch.eye(16))
        reader.k1.bias.zero_()
        reader.slopes.bias.copy_(torch.tensor([-10.0, -10.0, 1.0, 1.0]))  # per head: far (~0), then near
    objects = torch.zeros(1, 4, 16)
    objects[0, 0, [0, 8]] = 1.0
    where = torch.tensor([[[0.0, 0.0], [0.9, 0.9], [-0.8, 0.1], [0.2, -0.3]]])
    _, trace = reader(objects, where, torch.ones(1, 4, dtype=torch.bool), torch.tensor([0]), torch.tensor([[3, 4]]))
    hop1, hop2 = trace.hop1[0], trace.hop2[0]
    assert hop1.argmax() == 0 and hop1[0] > 0.9
    assert hop2.argmax() == 3 and hop2[3] > 0.9


def test_hop_one_head_zero_follows_the_words_and_is_what_the_contrast_trains() -> None:
    # hop 2 measures from hop 1's head 0, so that head reads the words' keys alone (the LSTM's
    # query cannot pull it off the named object), and the grounding contrast trains that head's part
    reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2).train()
    before = _read(reader)[1].hop1.clone()
    with torch.no_grad():
        reader.q1.weight.mul_(-3.0)
    assert torch.allclose(_read(reader)[1].hop1, before)
    objects, valid = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    reader.grounding_loss(objects, valid, torch.tensor([0, 1]), torch.tensor([[3, 4, 0], [6, 7, 8]])).backward()
    grad = reader.word_keys.weight.grad.abs().sum(1)  # (D,): per output feature
    assert grad[:8].sum() > 0 and grad[8:].sum() == 0


def test_matching_hop_one_scores_an_object_by_its_best_word_not_by_all_the_words() -> None:
    # "the object furthest from the red object": summed, a long key for "furthest" can outvote
    # "red"; matched (each object's best cosine with one word, as the contrast scores it), it cannot
    words = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])  # "red" points at object 0; "furthest", long, near object 1
    keys = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    summed = torch.einsum("qp,qkp->qk", words.sum(1), keys)
    matched = _matches(words, keys, torch.zeros(1, 2, dtype=torch.bool))
    assert summed.argmax().item() == 1 and matched.argmax().item() == 0
    # the lengths of the keys no longer count, in the reader's head 0 as in the contrast
    heads0 = {}
    for kind in HOP1:
        reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2, hop1=kind)
        before = _read(reader)[1].hop1.clone()
        with torch.no_grad():
            reader.word_keys.weight.mul_(5.0)
        heads0[kind] = torch.allclose(_read(reader)[1].hop1, before, atol=1e-5)
    assert heads0 == {"sum": False, "match": True}


def test_the_contrast_reaches_every_object_not_only_the_best_match() -> None:
    # a hard max over a picture's objects would send a word's gradient to one object per picture,
    # and in crowded scenes that is rarely the named one; the soft max reaches each valid object
    reader = ObjectReader(vocab_size=12, answers=4, d=16, hidden=32, heads=2).train()
    objects = torch.randn(2, 14, 16, requires_grad=True)
    valid = torch.ones(2, 14, dtype=torch.bool)
    valid[1, -3:] = False  # padding gets nothing
    reader.grounding_loss(objects, valid, torch.tensor([0, 1]), torch.tensor([[3, 4, 0], [6, 0, 0]])).backward()
    reached = objects.grad.abs().sum(-1) > 0  # (B,K)
    assert reached[valid].all() and not reached[~valid].any()


def test_flat_colour_pictures_keep_their_own_side_unless_one_is_given() -> None:
    samples = list(load_dataset("builtin:sort-of-clevr?split=train&images=30&seed=3"))  # 75-pixel pictures
    assert choose_image_tokens(samples, ModelConfig(10, 4), keep_size=False)[:2] == ("objects", 75)
    assert choose_image_tokens(samples, ModelConfig(10, 4, image_size=96), keep_size=True)[1] == 96


@pytest.mark.parametrize("kind", TEXT_ENCODERS)
def test_every_text_encoder_reads_only_the_words_and_keeps_them_apart(kind: str) -> None:
    torch.manual_seed(0)
    encoder = build_text_encoder(kind, vocab_size=12, words=8, d=16, heads=2, max_text=6).eval()
    tokens = torch.tensor([[3, 4, 5, 0, 0, 0], [6, 7, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])  # the last one empty
    sentence, words = encoder(tokens)
    assert sentence.shape == (3, 16) and words.shape == (3, 3, 8)  # the columns no question uses are dropped
    assert torch.isfinite(sentence).all() and torch.equal(words, encoder.words(tokens))
    assert torch.equal(words, encoder.embed(tokens[:, :3]))  # the words before any context mixes them
    alone, _ = encoder(tokens[1:2, :2])  # the same question with no padding beside it
    assert torch.allclose(alone, sentence[1:2], atol=1e-6)
    with pytest.raises(ValueError, match="use one of lstm, transformer"):
        build_text_encoder("gru", 12, 8, 16, 2, 6)
