"""Losses against small examples worked out by hand (temperature 0.5).

    q = [e1, e2, e3]                 (one-hot rows)
    p = [(1,0,0), (0,1,0), (0.6,0.8,0)]
    t = [(0.8,0.6,0), (0,1,0), (0,0,1)]   (the passages' "translations")

    q.p^T / 0.5 = [[2, 0, 1.2],          p.t^T / 0.5 = [[1.6, 0, 0],
                   [0, 2, 1.6],                         [1.2, 2, 0],
                   [0, 0, 0  ]]                         [1.92, 1.6, 0]]

InfoNCE q->p, one row each (log-sum-exp of the row minus its diagonal):
    r0 = ln(e^2 + 1 + e^1.2) - 2 = 0.460373
    r1 = ln(1 + e^2 + e^1.6) - 2 = 0.590924
    r2 = ln(1 + 1 + 1)     - 0 = 1.098612        mean = 0.716636
p->q, one column each:
    c0 = c1 = ln(e^2 + 2) - 2     = 0.239545
    c2 = ln(e^1.2 + e^1.6 + 1) - 0 = 2.227123       mean = 0.902071
    symmetric = (0.716636 + 0.902071) / 2 = 0.809354
Semantic contrastive term p->t (Hu et al.'s semantic loss over parallel passages):
    l0 = ln(e^1.6 + 2) - 1.6        = 0.339178
    l1 = ln(e^1.2 + e^2 + 1) - 2    = 0.460373
    l2 = ln(e^1.92 + e^1.6 + 1) - 0 = 2.547411      mean = 1.115654
    contrastive total (lambda 0.1) = 0.716636 + 0.1 * 1.115654 = 0.828202

Hard negatives n = [(0,0,1), (0,0.6,0.8), (1,0,0)] (one per pair) add three columns:
    q.n^T / 0.5 = [[0, 0, 2], [0, 1.2, 0], [2, 1.6, 0]]
    r0 = ln(e^2 + 1 + e^1.2 + 1 + 1 + e^2) - 2 = 1.049189
    r1 = ln(1 + e^2 + e^1.6 + 1 + e^1.2 + 1) - 2 = 0.926500
    r2 = ln(1 + 1 + 1 + e^2 + e^1.6 + 1) - 0 = 2.793744       mean = 1.589811
Identical passages, ids (a, b, a): column 2 is row 0's positive again and column 0 row 2's, so
each is masked out of the other's row:
    m0 = ln(e^2 + 1) - 2 = 0.126928,  m1 = r1 of plain InfoNCE = 0.590924,  m2 = ln(1 + 1) = 0.693147
    mean = 0.470333
With negatives whose ids are (x, y, b), the third negative is row 1's positive: r1 loses its e^0 term,
    r1' = ln(1 + e^2 + e^1.6 + 1 + e^1.2) - 2 = 0.871427,  mean with r0, r2 = 1.571453
"""

from __future__ import annotations

import math

import pytest
import torch

from engine.losses import PassageIds, RetrievalLoss, info_nce, same_passage_mask
from vocabulary.config import RunConfig

Q = torch.eye(3)
P = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]])
T = torch.tensor([[0.8, 0.6, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
e = math.exp
FORWARD = (math.log(e(2) + 1 + e(1.2)) - 2 + math.log(1 + e(2) + e(1.6)) - 2 + math.log(3)) / 3
BACKWARD = (2 * (math.log(e(2) + 2) - 2) + math.log(e(1.2) + e(1.6) + 1)) / 3
SEMANTIC = (math.log(e(1.6) + 2) - 1.6 + math.log(e(1.2) + e(2) + 1) - 2 + math.log(e(1.92) + e(1.6) + 1)) / 3
N = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.6, 0.8], [1.0, 0.0, 0.0]])
WITH_NEGATIVES = (math.log(2 * e(2) + 3 + e(1.2)) - 2 + math.log(3 + e(2) + e(1.6) + e(1.2)) - 2
                  + math.log(4 + e(2) + e(1.6))) / 3
MASKED = (math.log(e(2) + 1) - 2 + math.log(1 + e(2) + e(1.6)) - 2 + math.log(2)) / 3


def test_hand_values_match_the_docstring_arithmetic():
    assert FORWARD == pytest.approx(0.716636, abs=1e-6)
    assert BACKWARD == pytest.approx(0.902071, abs=1e-6)
    assert SEMANTIC == pytest.approx(1.115654, abs=1e-6)
    assert WITH_NEGATIVES == pytest.approx(1.589811, abs=1e-6)
    assert MASKED == pytest.approx(0.470333, abs=1e-6)


def test_info_nce_one_direction():
    assert info_nce(Q, P, 0.5).item() == pytest.approx(FORWARD, abs=1e-6)


def test_info_nce_symmetric_averages_both_directions():
    assert info_nce(Q, P, 0.5, symmetric=True).item() == pytest.approx((FORWARD + BACKWARD) / 2, abs=1e-6)
    assert info_nce(P, Q, 0.5).item() == pytest.approx(BACKWARD, abs=1e-6)


def test_contrastive_loss_adds_the_weighted_semantic_term():
    loss = RetrievalLoss(temperature=0.5, contrastive_weight=0.1)
    assert loss(Q, P, T).item() == pytest.approx(FORWARD + 0.1 * SEMANTIC, abs=1e-6)
    assert loss(Q, P, T).item() == pytest.approx(0.828202, abs=1e-6)


def test_hard_negatives_are_extra_columns_of_every_row():
    loss = RetrievalLoss(temperature=0.5)
    assert loss(Q, P, negatives=N).item() == pytest.approx(WITH_NEGATIVES, abs=1e-6)
    assert info_nce(Q, torch.cat([P, N]), 0.5).item() == pytest.approx(1.589811, abs=1e-6)
    # Unique ids change nothing.
    ids = PassageIds(("a", "b", "c"), ("x", "y", "z"))
    assert loss(Q, P, negatives=N, ids=ids).item() == pytest.approx(WITH_NEGATIVES, abs=1e-6)


def test_an_identical_passage_is_masked_out_of_the_negatives():
    ids = PassageIds(("a", "b", "a"))
    assert same_passage_mask(ids.passages, ids.passages).tolist() == [
        [False, False, True], [False, False, False], [True, False, False]]
    assert RetrievalLoss(temperature=0.5)(Q, P, ids=ids).item() == pytest.approx(MASKED, abs=1e-6)
    # A hard negative that is another row's positive is masked in that row only.
    negative_ids = PassageIds(("a", "b", "c"), ("x", "y", "b"))
    r0, r2 = math.log(2 * e(2) + 3 + e(1.2)) - 2, math.log(4 + e(2) + e(1.6))
    expected = (r0 + math.log(2 + e(2) + e(1.6) + e(1.2)) - 2 + r2) / 3
    assert expected == pytest.approx(1.571453, abs=1e-6)
    loss = RetrievalLoss(temperature=0.5)(Q, P, negatives=N, ids=negative_ids)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert same_passage_mask(("a", "b"), ("a", "b", "x")) is None


def test_the_symmetric_direction_masks_the_same_copies():
    ids = PassageIds(("a", "b", "a"))
    logits = Q @ P.T / 0.5
    same = same_passage_mask(ids.passages, ids.passages)
    masked = logits.masked_fill(same, float("-inf"))
    expected = (MASKED + torch.nn.functional.cross_entropy(masked.T, torch.arange(3)).item()) / 2
    # By hand, columns: c0 = ln(e^2 + 1) - 2 (q2 masked), c1 = ln(e^2 + 2) - 2, c2 = ln(e^1.6 + 1) (q0 masked).
    by_hand = (math.log(e(2) + 1) - 2 + math.log(e(2) + 2) - 2 + math.log(e(1.6) + 1)) / 3
    assert expected == pytest.approx((MASKED + by_hand) / 2, abs=1e-6)
    assert RetrievalLoss(temperature=0.5, symmetric=True)(Q, P, ids=ids).item() == pytest.approx(expected, abs=1e-6)


def test_from_config_follows_the_strategy():
    plain = RetrievalLoss.from_config(RunConfig(strategy="hybrid", temperature=0.5, symmetric_loss=True))
    assert not plain.needs_translations
    assert plain(Q, P).item() == pytest.approx((FORWARD + BACKWARD) / 2, abs=1e-6)
    contrastive = RetrievalLoss.from_config(RunConfig(strategy="contrastive", temperature=0.5))
    assert contrastive.needs_translations and contrastive.contrastive_weight == 0.1
    with pytest.raises(ValueError, match="needs each passage's translation"):
        contrastive(Q, P)


def test_bf16_inputs_are_scored_in_float32():
    loss = info_nce(Q.bfloat16(), P.bfloat16(), 0.5)
    assert loss.dtype == torch.float32
    # 0.6 and 0.8 are not exact in bf16, hence the looser tolerance.
    assert loss.item() == pytest.approx(FORWARD, abs=1e-2)


def test_gradient_pushes_positive_up_and_negatives_down():
    q = Q.clone().requires_grad_()
    info_nce(q, P, 0.5).backward()
    # d loss / d q_0 = (softmax(row 0) . P - p_0) / (3 * 0.5): negative along p_0's own axis.
    soft = torch.softmax(torch.tensor([2.0, 0.0, 1.2]), 0)
    expected = (soft @ P - P[0]) / 1.5
    assert torch.allclose(q.grad[0], expected, atol=1e-6)
