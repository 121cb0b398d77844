"""Training losses: InfoNCE with in-batch negatives, and the language-contrastive baseline.

Embeddings arrive L2-normalised, so ``q @ p.T`` is the cosine similarity.
Logits are computed in float32 even under bf16 autocast: dividing by a
temperature of 0.05 multiplies bf16's rounding error by 20.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vocabulary.config import RunConfig
from vocabulary.strategies import strategy


def info_nce(anchors: Tensor, positives: Tensor, temperature: float, symmetric: bool = False) -> Tensor:
    """Mean cross-entropy of ``anchors[i]`` picking ``positives[i]`` among all positives.

    ``L = -1/B sum_i log( exp(a_i.p_i / t) / sum_j exp(a_i.p_j / t) )``: every other
    row's positive is an in-batch negative. ``symmetric`` averages this with the
    same loss in the positive -> anchor direction (columns of the logit matrix).
    """
    logits = anchors.float() @ positives.float().T / temperature
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, target)) / 2
    return loss


@dataclass(frozen=True)
class RetrievalLoss:
    """The loss of one batch: semantic InfoNCE, plus the language term for ``contrastive`` runs.

    Language-contrastive baseline, after Hu et al. 2022, "Language Agnostic
    Multilingual Information Retrieval with Contrastive Learning"
    (arXiv 2210.06633, ACL Findings 2023). They add to the retrieval loss a
    contrastive loss over *parallel* sentences that pulls a sentence towards its
    translation and away from the other in-batch sentences. We implement it on
    our parallel passages, with the retrieval temperature t:

        total = InfoNCE(q, p) + lambda * L_lang
        L_lang = -1/B sum_i log( exp(p_i.p'_i / t) / sum_j exp(p_i.p'_j / t) )

    where p_i is pair i's positive passage in its passage language and p'_i the
    same passage in a second language of its group (drawn by the sampler), and
    lambda = ``contrastive_weight``. The paper's further term on *non-parallel*
    corpora is not implemented: all our training text is parallel.
    """

    temperature: float
    symmetric: bool = False
    contrastive_weight: float | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> "RetrievalLoss":
        weight = config.contrastive_weight if strategy(config.strategy).uses_contrastive_weight else None
        return cls(config.temperature, config.symmetric_loss, weight)

    @property
    def needs_translations(self) -> bool:
        return self.contrastive_weight is not None

    def __call__(self, queries: Tensor, passages: Tensor, translations: Tensor | None = None) -> Tensor:
        loss = info_nce(queries, passages, self.temperature, self.symmetric)
        if self.contrastive_weight is not None:
            if translations is None:
                raise ValueError("the contrastive loss needs each passage's translation; the batch has none")
            loss = loss + self.contrastive_weight * info_nce(passages, translations, self.temperature)
        return loss
