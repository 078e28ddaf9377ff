"""How the model reads object tokens for a question: find what it names, then what that relates to.

    question (Q,L) ──the text encoder (text.py)──▶ words e (Q,L,W) and the sentence q (Q,D)
    objects (B,K,D), centres (B,K,2)
    hop 1: attention over the objects, query q + sum of the words' keys ──▶ r1 (what is named), p1
           (head 0: the words' keys alone, the part the grounding contrast trains; with hop1 "match",
           each object scored by its best cosine with one word, as the contrast scores it)
    hop 2: keys carry each object's offset from p1 and distance, and how much hop 1 chose it;
           query [q + the words q picks (an attention over e), r1]      ──▶ r2 ("closest to" ...)
           plus, per head, two slopes read from the query (with a gain): one times each object's
           distance from p1, one times its nearness, 0 for what hop 1 found
    counts: per head, a sum of sigmoids over the objects     ──▶ "how many"
    pairs: an MLP of [q, the object hop 1 found, object k, offset k], summed over k ──▶ "how
           many share its shape" (a Relation Network's sum, with one side fixed: K terms, not K²)
    MLP([q, r1, r2, q*r1, counts, pairs, p1, offsets]) ──▶ state (Q,H) for the answer and verify heads

Without the pairs, Sort-of-CLEVR's count questions stayed at 81% for good: the model answered
how many objects share the commoner shape, right whenever the named object has it. With them,
99-100% after 1,000 steps.

Hop 2's slopes: "the object closest to the red one" needs scores that fall steeply with
distance and that leave out the red one itself (at distance 0). Through the dot product of two
projections, each moved ~lr a step by Adam, such steep scores took thousands of steps: on
builtin:shapes with no scene, "what colour is the object closest to" stayed at 64% after 8
minutes. So hop 2 adds, per head, two slopes read from the query: times each object's distance
(0 for the named object) and times its nearness (0 for the named object too). Kept positive, neither
can put the named object first; signed slopes could, and whichever of closest or furthest was not
learnt first then stayed behind (64% / 100% after 4.3 minutes in one run, 95% / 21% after 2.3 in
another). With positive slopes: closest 100% and furthest 98-100% after 3.6 minutes, validation
vqa 99.9% after 4.3.

Five things made it learn from answers alone (measured on builtin:shapes with no scene, and on
Sort-of-CLEVR):

- the sum of the words' keys in hop 1's query: a colour word reaches attention in one linear step.
  Through the sentence vector (an LSTM's) alone, attention stayed uniform and "the red object"
  was not found in 4,000 steps;
- ``grounding_loss``: every word of a question is scored against every object of every image in
  the batch (a soft maximum of its cosines, in hop 1's head 0's part of the keys), and a question
  must score its own image above the others. Words name things that are in the picture, so this
  teaches which object a word means without any label (weakly supervised grounding by contrast, as
  in Gupta et al. 2020). Without it, whether and when attention found the named object varied
  from run to run; with it, within a minute.
  It needs pictures that differ in what they hold (objects.pictures_differ), and it trains alone
  for the first share of training (loop.py): beside the answers from the start, in scenes of 12-16
  objects, their gradients swamped it and the words never found their objects;
- hop 1's head 0, the one hop 2 measures from, reads only the words' keys, and the contrast
  trains only that head's part. When the contrast trained all heads' parts together and head 0
  also read q, head 0 settled on an arbitrary object in 3 of 6 shapes runs (0.24-0.36 of its
  weight on the named one after 1.2 minutes; closest / furthest 44-49% / 24-31% then, ~75% after
  9). With the words alone but the contrast on every part, one of five runs still did. With
  both, validation vqa 99.9% after 5.3 minutes in the run that had stalled;
- ``mixture_loss``: hop 2 must also explain the answer by one object it reads. Beside the main
  answer, the answer is modelled as a mixture over objects, p(a) = sum_k attention_k *
  p(a | question, object k, its offset from what hop 1 found), for hop 2's first head
  (multiple-instance learning: the gradient moves attention to the object that explains the
  answer, not to a blend). On builtin:shapes with no scene, after 4 minutes, "what colour is the
  object closest to / furthest from" reached 98% / 100%; with the same term on hop 1 as well, 46%
  / 30%. On hop 1 it pushes attention away from the named object, which never explains such an
  answer (the red object is never the one closest to the red object). So hop 1 has the term only
  where the contrast is off: there it is what finds the named object. On Sort-of-CLEVR
  (validation vqa), hop 2's term alone: 91.0% after ~1,000 steps, 97.0% after ~1,450; with hop 1's
  too, 98.6% and 99.1%;
- hop 1's head 0 scores each object by its best cosine with any one word, the contrast's own
  measure (``hop1 = "match"``). With the sum of all the words' keys, any word could outvote the
  colour word: in scenes of 12-16 objects "furthest from the red object" found the red one in 60
  of 376 questions and relational questions stayed at 11% after 5 minutes; matched, 90.3% (vqa
  70.5 -> 97.3%); shapes, renders and Sort-of-CLEVR within a point (shapes' verify 1.5-2.7 lower).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .text import build_text_encoder

__all__ = ["HOP1", "ObjectReader", "Trace"]

HOP1 = ("sum", "match")  # how hop 1's head 0 scores objects (ModelConfig.hop1; see ObjectReader.forward)

_GROUNDING_SCALE = 20.0  # sharpens the question-to-image scores (mean cosines) of the contrast
_SOFT_MAX = 10.0  # the inverse temperature of a word's soft maximum over a picture's objects
_NEAR_GAIN = 10.0  # hop 2's slopes (far, near) move this much faster than a weight


class Trace(NamedTuple):
    """What a forward saw, for ``mixture_loss``: hop 1's and hop 2's first-head attention (Q,K),
    each object beside the question and where it is (Q,K,D+D+2), its offset from what hop 1 found
    (Q,K,3) and which slots hold objects (Q,K)."""

    hop1: torch.Tensor
    hop2: torch.Tensor
    each: torch.Tensor
    offset: torch.Tensor
    valid: torch.Tensor


class ObjectReader(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        answers: int,
        d: int,
        hidden: int = 256,
        heads: int = 4,
        words: int = 64,
        max_text: int = 24,
        text: str = "lstm",
        hop1: str = "match",
    ) -> None:
        super().__init__()
        self.heads, self.hop1 = heads, hop1
        self.part = d // heads  # hop 1's head 0's features: what the contrast trains, what hop 2 measures from
        self.text = build_text_encoder(text, vocab_size, words, d, heads, max_text)  # text.py
        self.bow = nn.Linear(words, d)
        self.word_pos = nn.Parameter(torch.zeros(max_text, words))
        self.pick = nn.Linear(d, words)  # which words hop 2 reads: an attention over the question
        self.word_keys = nn.Linear(words, d, bias=False)  # a word as it matches objects (grounding)
        self.q1, self.k1 = nn.Linear(d, d), nn.Linear(d, d)
        self.q2, self.k2 = nn.Linear(2 * d, d), nn.Linear(d + 4, d)
        # per head, how much hop 2 prefers far objects and near ones (other than hop 1's), with a gain
        self.slopes = nn.Linear(2 * d, 2 * heads)
        nn.init.zeros_(self.slopes.weight)
        nn.init.constant_(self.slopes.bias, -1.0)  # softplus: 0.31, so 3.1 with the gain
        self.count = nn.Linear(d, d)
        # each object beside the one hop 1 found, summed over the objects ("how many share its shape")
        self.pair = nn.Sequential(nn.Linear(3 * d + 3, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.out = nn.Sequential(nn.Linear(5 * d + 6 * heads, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        # the answer as one object hop 2 reads explains it (mixture_loss): from the question, the
        # object, where it is, and where it is from what hop 1 found
        self.explain = nn.Sequential(nn.Linear(2 * d + 5, hidden), nn.ReLU(), nn.Linear(hidden, answers))
        # the same for hop 1 (the object and where it is), used where the grounding contrast is not
        self.explain1 = nn.Sequential(nn.Linear(2 * d + 2, hidden), nn.ReLU(), nn.Linear(hidden, answers))

    def _scores(self, query: torch.Tensor, keys: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(Q,D) x (Q,K,D) -> (Q,H,K) scaled dot products per head; empty slots far below."""
        q, k, d = keys.shape
        h = self.heads
        s = torch.einsum("qhd,qkhd->qhk", query.view(q, h, -1), keys.view(q, k, h, -1)) / math.sqrt(d / h)
        return s.masked_fill(~valid[:, None], -1e4)

    def forward(
        self,
        objects: torch.Tensor,
        where: torch.Tensor,
        valid: torch.Tensor,
        q_image: torch.Tensor,
        tokens: torch.Tensor,
    ) -> tuple[torch.Tensor, Trace]:
        """objects (B,K,D), where (B,K,2), valid (B,K); q_image (Q,), tokens (Q,L) -> state (Q,hidden)
        and what the forward saw (for ``mixture_loss`` in training)."""
        o, xy, ok = objects[q_image], where[q_image].to(objects.dtype), valid[q_image]
        n, k, d = o.shape
        q, e = self.text(tokens)  # the sentence (Q,D), the words (Q,L,W)
        pad = tokens[:, : e.shape[1]] == 0
        pick = torch.einsum("qw,qlw->ql", self.pick(q), e + self.word_pos[: e.shape[1]]).masked_fill(pad, -1e4)
        picked = self.bow(torch.einsum("ql,qlw->qw", pick.softmax(-1), e))  # the words hop 2 is about
        h = self.heads
        # head 0 reads the words' keys alone (what the grounding contrast trains): hop 2 measures from it
        from_q = self.q1(q)
        from_q = torch.cat([torch.zeros_like(from_q[:, : self.part]), from_q[:, self.part :]], -1)
        word_keys, k1 = self.word_keys(e), self.k1(o)
        scores1 = self._scores(from_q + word_keys.sum(1), k1, ok)  # (Q,H,K)
        if self.hop1 == "match":  # head 0: each object's best match with any one word, as the contrast has it
            named = _matches(word_keys[..., : self.part], k1[..., : self.part], pad) * _GROUNDING_SCALE
            scores1 = torch.cat([named.masked_fill(~ok, -1e4).to(scores1.dtype)[:, None], scores1[:, 1:]], 1)
        a1 = scores1.softmax(-1)
        r1 = torch.einsum("qhk,qkhd->qhd", a1, o.view(n, k, h, -1)).reshape(n, d)
        p1 = torch.einsum("qhk,qkc->qhc", a1, xy)  # (Q,H,2)
        offset = xy - p1[:, :1]  # (Q,K,2) from what head 0 of hop 1 found
        offset = torch.cat([offset, (offset**2).sum(-1, keepdim=True)], -1)
        k2 = self.k2(torch.cat([o, offset, a1[:, 0, :, None]], -1))
        asked = torch.cat([q + picked, r1], -1)
        distance = (offset[..., 2] + 1e-4).sqrt()  # (Q,K); the eps keeps the gradient finite at 0
        # "far": 0 for what hop 1 found; "near": highest for the nearest other object, 0 for what hop 1
        # found (max distance 2.83). With slopes kept positive, neither can put the named object first
        nearness = (3.0 - distance) * (1 - a1[:, 0])
        to_far, to_near = (_NEAR_GAIN * F.softplus(self.slopes(asked))).view(n, 2, h, 1).unbind(1)  # 2 x (Q,H,1)
        sloped = to_far * distance[:, None] + to_near * nearness[:, None]  # (Q,H,K)
        a2 = (self._scores(self.q2(asked), k2, ok) + sloped).softmax(-1)
        r2 = torch.einsum("qhk,qkhd->qhd", a2, o.view(n, k, h, -1)).reshape(n, d)
        counts = (torch.sigmoid(self._scores(self.count(q + r1), self.k1(o), ok)) * ok[:, None]).sum(-1) / 4
        found = torch.einsum("qk,qkd->qd", a1[:, 0], o)[:, None].expand(-1, k, -1)  # what head 0 found, whole
        question = q[:, None].expand(-1, k, -1)
        pairs = (self.pair(torch.cat([question, found, o, offset], -1)) * ok[..., None]).sum(1)
        offsets = torch.einsum("qhk,qkc->qhc", a2, offset).reshape(n, -1)
        state = self.out(torch.cat([q, r1, r2, q * r1, counts, pairs, p1.reshape(n, -1), offsets], -1))
        return state, Trace(a1[:, 0], a2[:, 0], torch.cat([question, o, xy], -1), offset, ok)

    def mixture_loss(
        self, trace: Trace, rows: torch.Tensor, targets: torch.Tensor, first_hop: bool = False
    ) -> torch.Tensor:
        """-log sum_k attention_k p(answer | object k) for hop 2's first head (and hop 1's with
        ``first_hop``), over the vqa ``rows`` (a mask of the queries) of a forward's ``trace``, with
        their soft ``targets`` (V,A)."""
        a1, a2, each, offset, ok = (t[rows] for t in trace)
        loss = self._mixture(a2, self.explain(torch.cat([each, offset], -1)), ok, targets)
        if first_hop:
            loss = loss + self._mixture(a1, self.explain1(each), ok, targets)
        return loss

    @staticmethod
    def _mixture(
        attention: torch.Tensor, explained: torch.Tensor, ok: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        each = explained.float().log_softmax(-1)  # (V,K,A)
        weight = torch.log(attention.float().clamp_min(1e-6)).masked_fill(~ok, -1e4)
        mixed = torch.logsumexp(weight[..., None] + each, dim=1)  # (V,A): log p(a)
        return -(targets * mixed).sum(-1).mean()

    def grounding_loss(
        self, objects: torch.Tensor, valid: torch.Tensor, q_image: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Contrast each question's words with the objects of every image in the batch (B > 1).

        A word's match with a picture is a soft maximum (logsumexp) of its cosines with the
        picture's objects, not the hard one: with the max only the best-matching object gets a
        gradient, and in a scene of 14 that is the named one about 1 time in 14 at the start (hop 1
        found the named object in 14.5% of crowded scenes' questions; with the soft max, 58.7%)."""
        e = self.text.words(tokens)
        words = F.normalize(self.word_keys(e)[..., : self.part].float(), dim=-1)  # (Q,L,D/H): hop 1's head 0
        keys = F.normalize(self.k1(objects)[..., : self.part].float(), dim=-1)  # (B,K,D/H)
        cosines = torch.einsum("qld,bkd->qlbk", words, keys).masked_fill(~valid[None, None], -1e4)
        best = torch.logsumexp(cosines * _SOFT_MAX, -1) / _SOFT_MAX  # (Q,L,B)
        real = (tokens[:, : e.shape[1]] != 0).to(best.dtype)
        score = (best * real[..., None]).sum(1) / real.sum(1, keepdim=True).clamp(min=1)
        return F.cross_entropy(score * _GROUNDING_SCALE, q_image)


def _matches(words: torch.Tensor, keys: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """(Q,L,P) word keys, (Q,K,P) object keys, (Q,L) padding -> (Q,K): each object's soft maximum
    over the question's words of their cosines (the grounding contrast's measure of a match)."""
    cosines = torch.einsum("qlp,qkp->qlk", F.normalize(words.float(), dim=-1), F.normalize(keys.float(), dim=-1))
    return torch.logsumexp(cosines.masked_fill(pad[..., None], -1e4) * _SOFT_MAX, 1) / _SOFT_MAX
