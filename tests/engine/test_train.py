"""The trainer on the tiny encoder: learning, schedule, cancel, resume, NaN, GradCache, freezing, dev loss."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import pickle
from pathlib import Path

import pytest
import torch

from engine.losses import RetrievalLoss
from engine.sampling import BatchSampler
from engine.selection import BEST_PREFIX
from engine.state import Cancelled, Progress, TaskState
from engine.train import (
    BatchBackward,
    CheckpointError,
    CheckpointMismatchError,
    NonFiniteLossError,
    learning_rate_factor,
    train,
)
from vocabulary.batching import batch_plan
from vocabulary.budget import total_steps
from vocabulary.config import RunConfig, StudyConfig
from vocabulary.records import ParallelGroup, TrainingSet

#: Names spelled the same in both languages: the question and its answer share one rare word.
NAMES = (
    "Zanzibar", "Kilimanjaro", "Toyota", "Beethoven", "Nairobi", "Picasso", "Everest", "Lagos",
    "Mozart", "Sahara", "Einstein", "Amazon", "Tokyo", "Shakespeare", "Volvo", "Mombasa",
)


#: Names for held-out dev groups: none of them is a training group's.
DEV_NAMES = ("Kampala", "Dodoma", "Timbuktu", "Accra", "Rembrandt", "Chopin", "Fiat", "Kigali")


def easy_set(names: tuple[str, ...] = NAMES, split: str = "train") -> TrainingSet:
    """16 groups in en/de that a tiny model learns in a few steps: match the shared name."""
    groups = tuple(
        ParallelGroup(
            id=f"{split}{i}",
            queries={"en": f"Where is {name}?", "de": f"Wo ist {name}?"},
            passages={"en": f"{name} is over there, near the river.", "de": f"{name} ist dort drüben am Fluss."},
        )
        for i, name in enumerate(names)
    )
    return TrainingSet(f"easy/{split}", ("de", "en"), groups)


def dev_set() -> TrainingSet:
    return easy_set(DEV_NAMES, "dev")


def negatives_set() -> TrainingSet:
    """:func:`easy_set` with a hard negative per pair: the next group's positive, so in a batch holding both
    groups that negative is another row's positive, which the loss must not count against that row."""
    data = easy_set()
    groups = tuple(
        dataclasses.replace(g, negatives=dict(data.groups[(i + 1) % len(data.groups)].passages))
        for i, g in enumerate(data.groups)
    )
    return dataclasses.replace(data, groups=groups)


def config(**changes) -> RunConfig:
    values = dict(
        model="tiny:", strategy="hybrid", alpha=0.5, train_size=16, train_languages=("de", "en"),
        batch_size=8, max_length=32, learning_rate=1e-3, epochs=2.0, max_steps=6, warmup_ratio=0.2,
        checkpoint_every=100, seed=11,
    )
    values.update(changes)
    return RunConfig(**values)


@pytest.fixture()
def encoder(tiny_encoder):
    """A private copy: training changes weights in place and the session fixture is shared."""
    return copy.deepcopy(tiny_encoder)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_loss_goes_down_and_progress_follows_the_schedule(encoder, tmp_path):
    # 16 groups x 2 languages / 8 = 4 steps per epoch. A tiny random model's loss is noisy
    # step to step; at lr 2e-3 the last four steps average under half of the first four
    # for every seed we tried (0, 1, 11), so the 0.6 bound fails only if learning breaks.
    cfg = config(epochs=6.0, max_steps=None, learning_rate=2e-3)
    seen: list[Progress] = []
    result = train(cfg, easy_set(), encoder, tmp_path, state=TaskState(seen.append))

    assert result.steps == 24 and [p.step for p in seen] == list(range(1, 25))
    assert all(p.total_steps == 24 for p in seen)
    assert result.losses == [p.loss for p in seen] and result.final_loss == result.losses[-1]
    first, last = sum(result.losses[:4]) / 4, sum(result.losses[-4:]) / 4
    assert last < 0.6 * first, (first, last)
    # ln(8) is chance level for 8 in-batch candidates.
    assert first == pytest.approx(math.log(8), abs=0.6)
    # Linear warm-up over ceil(0.2 * 24) = 5 steps (step 1 at 1/5 of the peak, not 0), the peak at step 5,
    # then linear decay to 1/20 of the peak at step 24.
    expected = [2e-3 * s / 5 if s <= 5 else 2e-3 * (25 - s) / 20 for s in range(1, 25)]
    assert [p.learning_rate for p in seen] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert min(p.learning_rate for p in seen) == pytest.approx(2e-3 / 20)
    assert all(p.samples_per_second > 0 for p in seen)
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()
    assert result.model_dir == tmp_path / "model" and any(result.model_dir.iterdir())
    assert not encoder.training  # left in eval mode for the evaluator


@pytest.mark.parametrize(("total", "warmup"), [(1, 1), (2, 1), (3, 1), (10, 0), (10, 3), (24, 5), (101, 11)])
def test_no_step_runs_at_learning_rate_zero(total, warmup):
    factors = [learning_rate_factor(step, total, warmup) for step in range(1, total + 1)]
    assert min(factors) > 0 and max(factors) == 1.0
    peak = factors.index(1.0) + 1
    assert peak == max(warmup, 1)
    assert factors[0] == pytest.approx(1 / peak) and factors[-1] == pytest.approx(1 / (total - peak + 1))
    # Linear up to the peak, linear down after it.
    assert all(a < b for a, b in zip(factors[:peak], factors[1:peak]))
    assert all(a > b for a, b in zip(factors[peak - 1 :], factors[peak:]))
    # The case: 3 steps with warm-up ceil(0.1 x 3) = 1 used to start at 0; now [1, 2/3, 1/3].
    if (total, warmup) == (3, 1):
        assert factors == pytest.approx([1.0, 2 / 3, 1 / 3])


def test_trained_model_ranks_the_positive_first(encoder, tmp_path):
    """The loss drop means something: after training, questions find their own answer."""
    train(config(epochs=6.0, max_steps=None), easy_set(), encoder, tmp_path)
    data = easy_set()
    with torch.no_grad():
        queries = encoder.embed([g.queries["en"] for g in data.groups], "query")
        passages = encoder.embed([g.passages["de"] for g in data.groups], "passage")
    top1 = (queries @ passages.T).argmax(dim=1)
    assert (top1 == torch.arange(16)).float().mean().item() >= 0.75


def test_cancel_saves_a_checkpoint_then_raises(encoder, tmp_path):
    seen: list[Progress] = []
    checkpoints: list[tuple[int, Path]] = []
    with pytest.raises(Cancelled, match="cancelled at step 2 of 6"):
        train(
            config(strategy="contrastive"), easy_set(), encoder, tmp_path,
            state=TaskState(seen.append, lambda: len(seen) >= 2), on_checkpoint=lambda s, p: checkpoints.append((s, p)),
        )
    assert [p.step for p in seen] == [1, 2]
    assert checkpoints == [(2, tmp_path / "checkpoint")]
    state = json.loads((tmp_path / "checkpoint" / "trainer.json").read_text(encoding="utf-8"))
    assert state["step"] == 2 and state["losses"] == [p.loss for p in seen]
    assert not (tmp_path / "model").exists()


def test_resume_reproduces_the_uninterrupted_run(tiny_encoder, tmp_path):
    cfg = config(checkpoint_every=2)
    straight_encoder = copy.deepcopy(tiny_encoder)
    straight = train(cfg, easy_set(), straight_encoder, tmp_path / "straight")

    # First attempt stops after 3 steps; a fresh copy of the untrained model resumes.
    steps: list[int] = []
    with pytest.raises(Cancelled):
        train(cfg, easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "resumed",
              state=TaskState(lambda p: steps.append(p.step), lambda: len(steps) >= 3))
    resumed_encoder = copy.deepcopy(tiny_encoder)
    checkpoints: list[int] = []
    resumed = train(cfg, easy_set(), resumed_encoder, tmp_path / "resumed",
                    state=TaskState(lambda p: steps.append(p.step)), on_checkpoint=lambda s, p: checkpoints.append(s))

    assert steps == [1, 2, 3, 4, 5, 6]
    assert checkpoints == [4, 6]
    assert resumed.steps == straight.steps == 6
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)
    assert len(set(straight.losses)) == 6  # a real curve, not a constant
    trained, resumed_weights, untrained = weights(straight_encoder), weights(resumed_encoder), weights(tiny_encoder)
    for name, value in trained.items():
        assert torch.allclose(value, resumed_weights[name], atol=1e-6), name
    moved = [name for name in trained if not torch.allclose(trained[name], untrained[name])]
    assert any("encoder.layer" in name for name in moved)  # both really trained, not both untouched


def test_checkpoint_of_another_run_is_refused(encoder, tmp_path):
    with pytest.raises(Cancelled):
        train(config(), easy_set(), encoder, tmp_path, state=TaskState(cancelled=lambda: True))
    with pytest.raises(CheckpointMismatchError, match="belongs to run .*delete it or use another working folder"):
        train(config(learning_rate=5e-4), easy_set(), encoder, tmp_path)


class _Exploit:
    """What an attacker plants: unpickling it runs a shell command (here: creating a marker file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("with_run_file", [False, True], ids=["old-layout", "with-run-json"])
def test_a_planted_pickle_in_the_checkpoint_is_never_executed(encoder, tmp_path, with_run_file):
    """Checkpoints come from a shared mirror and run ids are predictable: nothing from disk may be unpickled."""
    cfg = config()
    checkpoint, marker = tmp_path / "work" / "checkpoint", tmp_path / "executed"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer.pt").write_bytes(pickle.dumps(_Exploit(marker)))
    (checkpoint / "step.json").write_text('{"step": 3}')
    if with_run_file:  # the attacker knows the run id, and writes what a checkpoint's run file holds
        (checkpoint / "run.json").write_text(json.dumps({"run_id": cfg.run_id, "step": 3}))
    with pytest.raises(CheckpointError, match="delete it to train the run from the start"):
        train(cfg, easy_set(), encoder, tmp_path / "work")
    assert not marker.exists()


def test_the_run_id_is_checked_before_any_other_checkpoint_file_is_read(encoder, tmp_path):
    with pytest.raises(Cancelled):
        train(config(), easy_set(), encoder, tmp_path, state=TaskState(cancelled=lambda: True))
    checkpoint = tmp_path / "checkpoint"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "model.safetensors", "run.json", "trainer.json", "trainer.safetensors"]
    (checkpoint / "trainer.json").write_text("{damaged")  # would fail if it were read
    with pytest.raises(CheckpointMismatchError, match="belongs to run"):
        train(config(learning_rate=5e-4), easy_set(), encoder, tmp_path)
    with pytest.raises(CheckpointError, match=r"trainer.json: .*delete it to train the run from the start"):
        train(config(), easy_set(), encoder, tmp_path)


def test_non_finite_loss_stops_before_the_optimizer_step(encoder, tmp_path):
    # A temperature this small overflows q.p / t to inf, and the softmax to nan.
    cfg = config(temperature=1e-45, warmup_ratio=0.0)
    before = weights(encoder)
    with pytest.raises(NonFiniteLossError) as error:
        train(cfg, easy_set(), encoder, tmp_path)
    assert str(error.value) == "loss became nan at step 1 (lr 0.001): lower learning_rate or check the data"
    for name, value in weights(encoder).items():
        assert torch.equal(value, before[name]), name


def gradients(encoder, batch, loss, chunk_size) -> dict[str, torch.Tensor]:
    encoder.zero_grad(set_to_none=True)
    BatchBackward(encoder, loss, chunk_size)(batch)
    return {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}


def assert_same_gradients(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys() and len(a) > 10
    for name in a:
        assert torch.allclose(a[name], b[name], atol=atol, rtol=1e-4), (name, (a[name] - b[name]).abs().max())


def contrastive_batch():
    cfg = config(strategy="contrastive")
    return cfg, BatchSampler(batch_plan(cfg), easy_set()).next_batch()


def negatives_batch():
    cfg = config(strategy="multi")
    batch = BatchSampler(batch_plan(cfg), negatives_set()).next_batch()
    ids = set(batch.passage_ids)
    assert len(batch.negatives) == 8 and any(n in ids for n in batch.negative_ids)  # a masked column
    return cfg, batch


@pytest.mark.parametrize("make_batch", [contrastive_batch, negatives_batch], ids=["contrastive", "negatives"])
def test_grad_cache_gradients_equal_full_batch_gradients(encoder, make_batch):
    cfg, batch = make_batch()
    loss = RetrievalLoss.from_config(dataclasses.replace(cfg, symmetric_loss=True))
    encoder.eval()  # no dropout: chunks of 3, 3, 2 must give exactly the full-batch gradient
    plain = gradients(encoder, batch, loss, None)
    assert_same_gradients(gradients(encoder, batch, loss, 3), plain, atol=1e-5)
    assert any(g.abs().max() > 1e-4 for g in plain.values())


def test_grad_cache_replays_dropout_masks(encoder):
    cfg, batch = contrastive_batch()
    loss = RetrievalLoss.from_config(cfg)
    encoder.train()
    torch.manual_seed(0)
    plain = gradients(encoder, batch, loss, None)
    torch.manual_seed(1)
    other_masks = gradients(encoder, batch, loss, None)
    torch.manual_seed(0)
    cached = gradients(encoder, batch, loss, len(batch.pairs))  # one chunk: same masks if replayed
    assert_same_gradients(cached, plain, atol=1e-5)
    with pytest.raises(AssertionError):  # dropout is active, so the replay is what makes them equal
        assert_same_gradients(other_masks, plain, atol=1e-5)


def test_frozen_embeddings_do_not_move(encoder, tmp_path):
    before = weights(encoder)
    train(config(freeze_embeddings=True, max_steps=3), easy_set(), encoder, tmp_path)
    after = weights(encoder)
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert any("word_embeddings" in n for n in before)
    assert moved and not any("word_embeddings" in n for n in moved)
    assert any("encoder.layer.0." in n for n in moved)


def test_a_sentence_transformers_model_trains_its_dense_layer_and_saves_its_stack(tmp_path):
    """Pooling without the prefix tokens -> Dense tanh -> Normalize: the Dense layer trains, also when only
    the top transformer layer does, and the model exported from the run's trained tensors still encodes as
    sentence-transformers encodes it."""
    import numpy as np

    from engine.loading import load_encoder
    from tests.engine.st_models import TEXTS, load_st, st_model

    folder = st_model(tmp_path / "labse", pooling="mean", include_prompt=False,
                      prompts={"query": "query: ", "document": "passage: "})
    encoder = load_encoder(str(folder))
    before = weights(encoder)
    cfg = config(model=str(folder), max_length=None, trainable_layers=1, learning_rate=1e-2)
    result = train(cfg, easy_set(), encoder, tmp_path / "run")
    after = weights(encoder)
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert {"dense.0.linear.weight", "dense.0.linear.bias"} <= moved
    assert not any("embeddings" in n for n in moved)  # trainable_layers=1 froze the rest below the top layer
    load_encoder(str(result.model_dir)).save(tmp_path / "full")  # the run kept its trained tensors only
    model = load_st(tmp_path / "full")
    for kind, theirs in (("query", model.encode_query(TEXTS)), ("passage", model.encode_document(TEXTS))):
        np.testing.assert_allclose(encoder.encode(TEXTS, kind), theirs, atol=1e-5)
    np.testing.assert_allclose(model[2].linear.weight.detach().numpy(), after["dense.0.linear.weight"].numpy())


# ---- budgets ------------------------------------------------------------------------------------------
def test_a_fixed_step_study_trains_the_same_number_of_steps_at_every_size(tiny_encoder, tmp_path):
    template = config(budget="steps", steps=3, epochs=1.0, max_steps=None)
    study = StudyConfig("fixed", strategies=("hybrid",), train_sizes=(8, 16), seeds=(0,), include_baseline=False,
                        template=template)
    runs = study.expand()
    assert [total_steps(run, run.train_size) for run in runs] == [3, 3]
    results = [train(run, easy_set(), copy.deepcopy(tiny_encoder), tmp_path / str(run.train_size)) for run in runs]
    assert [r.steps for r in results] == [3, 3]
    # By epochs the same sizes would train 2 and 4 steps: data and compute would move together.
    by_epochs = [dataclasses.replace(run, budget="epochs", steps=None) for run in runs]
    assert [total_steps(run, run.train_size) for run in by_epochs] == [2, 4]


# ---- dev loss and model selection ---------------------------------------------------------------------
def test_the_dev_loss_is_reported_and_changes_nothing_of_the_training(tiny_encoder, tmp_path):
    seen: list[Progress] = []
    watched = train(config(dev_every=2, max_steps=5), easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "dev",
                    dev_set=dev_set(), state=TaskState(seen.append))
    plain = train(config(max_steps=5), easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "plain")
    assert watched.losses == plain.losses  # no dropout mask or batch drawn differs
    assert [step for step, _ in watched.dev_losses] == [2, 4, 5]  # every 2 steps and after the last
    losses = [loss for _, loss in watched.dev_losses]
    assert [p.dev_loss for p in seen] == [None, losses[0], losses[0], losses[1], losses[2]]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses)
    assert watched.selected_step == 5  # select "last"
    with pytest.raises(ValueError, match="asks for a dev loss every 2 steps, but no dev set was given"):
        train(config(dev_every=2), easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "none")


def test_best_dev_keeps_the_weights_with_the_lowest_dev_loss_across_a_resume(tiny_encoder, tmp_path):
    cfg = config(dev_every=2, select="best_dev", checkpoint_every=2, learning_rate=5e-3, max_steps=4)
    steps: list[int] = []
    with pytest.raises(Cancelled):
        train(cfg, easy_set(), copy.deepcopy(tiny_encoder), tmp_path, dev_set=dev_set(),
              state=TaskState(lambda p: steps.append(p.step), lambda: len(steps) >= 3))
    encoder = copy.deepcopy(tiny_encoder)
    result = train(cfg, easy_set(), encoder, tmp_path, dev_set=dev_set())
    straight = train(cfg, easy_set(), copy.deepcopy(tiny_encoder), tmp_path / "straight", dev_set=dev_set())
    assert [step for step, _ in result.dev_losses] == [step for step, _ in straight.dev_losses] == [2, 4]
    assert [loss for _, loss in result.dev_losses] == pytest.approx([loss for _, loss in straight.dev_losses], abs=1e-6)
    best_step, best_loss = min(result.dev_losses, key=lambda item: item[1])
    assert result.selected_step == straight.selected_step == best_step
    assert [p.name for p in tmp_path.glob(BEST_PREFIX + "*")] == [f"{BEST_PREFIX}{best_step:09d}"]
    # The kept weights really are the best ones: their dev loss, recomputed, is the lowest recorded.
    from engine.sampling import dev_batches

    backward = BatchBackward(encoder, RetrievalLoss.from_config(cfg))
    batches = dev_batches(batch_plan(cfg), dev_set())
    assert sum(backward.loss_only(b) for b in batches) / len(batches) == pytest.approx(best_loss, abs=1e-5)


def test_model_selection_restores_the_best_weights_not_the_last(encoder, tmp_path):
    from engine.sampling import dev_batches
    from engine.selection import ModelSelection

    cfg = config(dev_every=2, select="best_dev")
    selection = ModelSelection(cfg, dev_batches(batch_plan(cfg), dev_set()), tmp_path)
    backward = BatchBackward(encoder, RetrievalLoss.from_config(cfg))
    original = weights(encoder)

    def zeroed() -> None:  # every text embeds alike: each dev row is at chance, ln(8)
        with torch.no_grad():
            for parameter in encoder.parameters():
                parameter.zero_()

    zeroed()
    assert selection.evaluate(2, encoder, backward.loss_only) == pytest.approx(math.log(8), abs=1e-5)
    encoder.load_state_dict(original)
    middle = selection.evaluate(4, encoder, backward.loss_only)
    zeroed()
    selection.evaluate(6, encoder, backward.loss_only)
    best = 4 if middle < math.log(8) else 2
    assert selection.best[0] == best and selection.restore_best(encoder) == best
    restored = weights(encoder)
    if best == 4:
        assert all(torch.equal(restored[name], value) for name, value in original.items())
    else:
        assert all(not value.any() for value in restored.values())
    state = selection.state_dict()
    chance = pytest.approx(math.log(8), abs=1e-5)
    assert state == {"history": [[2, chance], [4, middle], [6, chance]], "best": [best, selection.best[1]]}
    selection.prune()
    assert [p.name for p in tmp_path.glob(BEST_PREFIX + "*")] == [f"{BEST_PREFIX}{best:09d}"]


def test_a_run_resumed_at_its_last_step_still_reports_that_step_and_its_loss(tiny_encoder, tmp_path):
    """A kill after the last checkpoint and before the results: the resumed attempt takes no step, yet
    ``status`` must still show "step N/N loss=..." (the worker keeps the last reported training step)."""
    first = train(config(), easy_set(), copy.deepcopy(tiny_encoder), tmp_path)
    heard: list[Progress] = []
    again = train(config(), easy_set(), copy.deepcopy(tiny_encoder), tmp_path, state=TaskState(heard.append))
    assert again.steps == first.steps == 6
    trained = [p for p in heard if p.step is not None and p.loss is not None]
    assert trained and (trained[-1].step, trained[-1].total_steps, trained[-1].loss) == (6, 6, first.final_loss)
