"""Run artifacts mirrored through fsspec: a run stopped on one machine resumes on another."""

from __future__ import annotations

import fsspec
import pytest

from engine.state import Cancelled, TaskState
from engine.train import train
from hybridscale.artifacts import ArtifactMirror
from tests.engine.test_distributed import copy_weights
from tests.engine.test_train import config, easy_set

RUN_ID = "0123456789abcdef"


def test_run_stopped_in_one_workdir_resumes_from_the_memory_mirror_in_a_fresh_one(tiny_encoder, tmp_path):
    cfg = config(checkpoint_every=2)
    straight = train(cfg, easy_set(), copy_weights(tiny_encoder), tmp_path / "straight")
    mirror = ArtifactMirror(f"memory://{tmp_path.name}/artifacts")
    run_id = cfg.run_id

    def push(step, path):
        mirror.push_checkpoint(run_id, path, step)

    steps: list[int] = []
    with pytest.raises(Cancelled):
        train(cfg, easy_set(), copy_weights(tiny_encoder), tmp_path / "machine-a",
              state=TaskState(lambda p: steps.append(p.step), lambda: len(steps) >= 3), on_checkpoint=push)

    fresh = tmp_path / "machine-b" / "checkpoint"
    assert mirror.pull_checkpoint(run_id, fresh) == 3
    assert mirror.pull_checkpoint(run_id, fresh) is None  # already as new as the mirror
    resumed = train(cfg, easy_set(), copy_weights(tiny_encoder), tmp_path / "machine-b",
                    state=TaskState(lambda p: steps.append(p.step)), on_checkpoint=push)

    assert steps == [1, 2, 3, 4, 5, 6]  # machine B went on from step 3, not from scratch
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)
    fs, root = fsspec.core.url_to_fs(mirror.url(run_id, "checkpoints"))
    assert [path.rsplit("/", 1)[-1] for path in fs.ls(root, detail=False)] == ["000000006"]  # only the newest


def test_a_damaged_pointer_is_one_clear_error(tmp_path):
    mirror = ArtifactMirror(tmp_path.as_uri())
    run = tmp_path / "runs" / RUN_ID
    run.mkdir(parents=True)
    (run / "checkpoint.json").write_text('{"step": 4, "fol')
    with pytest.raises(ValueError, match=r"checkpoint.json is not valid JSON .*delete it to resume"):
        mirror.pull_checkpoint(RUN_ID, tmp_path / "work" / "checkpoint")


def test_a_pointer_out_of_the_runs_checkpoints_is_refused(tmp_path):
    mirror = ArtifactMirror((tmp_path / "mirror").as_uri())
    other = tmp_path / "mirror" / "runs" / "fedcba9876543210" / "checkpoints" / "000000004"
    other.mkdir(parents=True)
    (other / "run.json").write_text('{"run_id": "fedcba9876543210", "step": 4}')
    pointer = tmp_path / "mirror" / "runs" / RUN_ID / "checkpoint.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"step": 4, "folder": "../fedcba9876543210/checkpoints/000000004"}')
    with pytest.raises(ValueError, match=r"does not name one of the run's checkpoints"):
        mirror.pull_checkpoint(RUN_ID, tmp_path / "work" / "checkpoint")
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("run_id", ["../../../x", "0123456789ABCDEF", "0123456789abcde", "/etc"])
def test_a_mirror_refuses_what_is_not_a_run_id_before_it_becomes_a_url(tmp_path, run_id):
    mirror = ArtifactMirror((tmp_path / "mirror").as_uri())
    with pytest.raises(ValueError, match="is not a run id"):
        mirror.url(run_id, "model")
    with pytest.raises(ValueError, match="is not a run id"):
        mirror.pull_checkpoint(run_id, tmp_path / "work" / "checkpoint")
