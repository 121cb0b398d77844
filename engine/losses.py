"""Training losses: InfoNCE with in-batch (and hard) negatives, and the semantic contrastive term.

Embeddings arrive L2-normalised, so ``q @ p.T`` is the cosine similarity s.
Logits are computed in float32 even under bf16 autocast: dividing by a
temperature of 0.05 multiplies bf16's rounding error by 20.

What each strategy trains, for a batch of B pairs (q_i, p_i), optional hard
negatives n_k (one per pair where the source has them, K = B, else K = 0)
and temperature t (1.0 is the paper's "cosine similarity, no temperature"):

    L_ret = -1/B sum_i log( e^{s(q_i,p_i)/t} / ( sum_j e^{s(q_i,p_j)/t} + sum_k e^{s(q_i,n_k)/t} ) )

``mono``, ``cross``, ``hybrid`` and ``multi`` train L_ret on their batches
(``symmetric_loss`` averages it with the passage -> query direction over the
B x B block). arXiv 2408.10536's Eq. 1 prints only the negatives in the
denominator, but its text calls the in-batch negatives crucial; we keep the
other pairs' positives as in-batch negatives (DPR, sentence-transformers) and
add the hard negatives to them.

``contrastive`` (labelled ``cross+semantic``) adds, with lambda =
``contrastive_weight``, a semantic contrastive term over each positive p_i and
its translation p'_i (the sampler's second language of the group):

    L = L_ret + lambda * ( -1/B sum_i log( e^{s(p_i,p'_i)/t} / sum_j e^{s(p_i,p'_j)/t} ) )

This is the *semantic* contrastive loss of Hu et al. 2023 (arXiv 2210.06633,
Findings of ACL 2023), aligning parallel texts, as their abstract describes
it. Their *language* contrastive loss, which uses parallel pairs to remove
language-specific information from non-parallel corpora, is not
implemented: its equations could not be obtained (no stored copy of the
paper's method section; the official repository holds only a README), and
we will not guess them. The temperature t and lambda are ours.

Identical passages are not negatives (belt and braces; the sampler already
keeps them out of a batch): a column whose passage id equals that of row
i's positive is masked out of row i's denominator. Since it is the same
passage, counting it as a second positive would only count one passage
twice, so we remove it instead; the loss of a batch without such columns is
unchanged, and chance level stays ln(number of distinct candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vocabulary.batching import batch_plan
from vocabulary.config import RunConfig


def info_nce(
    anchors: Tensor, candidates: Tensor, temperature: float, symmetric: bool = False, same: Tensor | None = None
) -> Tensor:
    """Mean cross-entropy of ``anchors[i]`` picking ``candidates[i]`` among all candidates.

    ``L = -1/B sum_i log( exp(a_i.c_i / t) / sum_j exp(a_i.c_j / t) )``: every
    other candidate is a negative (the other rows' positives, then any hard
    negatives appended after the first B rows). ``same`` (bool, B x C) masks
    out column j of row i, a copy of row i's positive. ``symmetric`` averages
    this with the positive -> anchor direction over the first B columns.
    """
    logits = anchors.float() @ candidates.float().T / temperature
    if same is not None:
        logits = logits.masked_fill(same, float("-inf"))
    rows = logits.shape[0]
    target = torch.arange(rows, device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits[:, :rows].T, target)) / 2
    return loss


def same_passage_mask(
    row_ids: Sequence[str], column_ids: Sequence[str], device: torch.device | str = "cpu"
) -> Tensor | None:
    """``mask[i, j]``: column j (j != i) is the passage of row i's positive, column i; None when no id repeats.

    ``row_ids[i]`` is the id of column i (rows' positives come first among the columns).
    """
    if len(set(column_ids)) == len(column_ids):
        return None
    codes = {passage: n for n, passage in enumerate(dict.fromkeys(column_ids))}
    rows = torch.tensor([codes[passage] for passage in row_ids], device=device)
    columns = torch.tensor([codes[passage] for passage in column_ids], device=device)
    mask = rows[:, None] == columns[None, :]
    diagonal = torch.arange(len(row_ids), device=device)
    mask[diagonal, diagonal] = False
    return mask


@dataclass(frozen=True)
class PassageIds:
    """The passage ids of a (global) batch's text columns, so the loss can tell a copy from a negative."""

    passages: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    translations: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetrievalLoss:
    """The loss of one batch: InfoNCE over positives and hard negatives, plus the semantic term for ``contrastive``."""

    temperature: float
    symmetric: bool = False
    contrastive_weight: float | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> "RetrievalLoss":
        """The run's loss; whether it has the parallel term is the batch plan's word (the strategy table's)."""
        return cls(config.temperature, config.symmetric_loss, batch_plan(config).contrastive_weight)

    @property
    def needs_translations(self) -> bool:
        return self.contrastive_weight is not None

    def __call__(
        self, queries: Tensor, passages: Tensor, translations: Tensor | None = None, *,
        negatives: Tensor | None = None, ids: PassageIds | None = None,
    ) -> Tensor:
        candidates = passages if negatives is None else torch.cat([passages, negatives])
        device = queries.device
        same = None if ids is None else same_passage_mask(ids.passages, ids.passages + ids.negatives, device)
        loss = info_nce(queries, candidates, self.temperature, self.symmetric, same)
        if self.contrastive_weight is not None:
            if translations is None:
                raise ValueError("the contrastive loss needs each passage's translation; the batch has none")
            same = None if ids is None else same_passage_mask(ids.translations, ids.translations, device)
            loss = loss + self.contrastive_weight * info_nce(passages, translations, self.temperature, same=same)
        return loss
