"""A frozen-prefix run keeps only its trained tensors; ``hybridscale export-model`` makes a full folder of them."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from engine.compact import RECORD, TRAINED_FILE
from engine.loading import load_encoder
from engine.model import ModelError
from engine.train import train
from hybridscale.cli import main
from hybridscale.worker import run_folder
from tests.engine.test_train import config, easy_set

TEXTS = ["Where is Zanzibar?", "Mvua ilinyesha usiku kucha.", "Ẹ káàárọ̀"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_encoder):
    """A run that trained the top layer of the tiny encoder, in the artifacts folder beside a SQLite file."""
    from storage.db import open_db

    root = tmp_path_factory.mktemp("export")
    open_db(root / "study.db").engine.dispose()  # the database the run's artifacts folder belongs to
    cfg = config(trainable_layers=1, max_steps=3)
    encoder = copy.deepcopy(tiny_encoder)
    result = train(cfg, easy_set(), encoder, run_folder(root / "artifacts", cfg.run_id))
    return root, cfg.run_id, result.model_dir, encoder


def test_the_run_keeps_only_its_trained_tensors(trained_run, tiny_encoder):
    _root, _run_id, model_dir, encoder = trained_run
    assert sorted(p.name for p in model_dir.iterdir()) == sorted([RECORD, TRAINED_FILE])
    full = sum(t.numel() for t in tiny_encoder.state_dict().values())
    kept = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    assert kept < full / 10  # the tiny model's frozen part is its embedding matrix and first layer
    loaded = load_encoder(str(model_dir))
    for kind in ("query", "passage"):
        np.testing.assert_allclose(loaded.encode(TEXTS, kind), encoder.encode(TEXTS, kind), atol=1e-6)
    assert not np.allclose(loaded.encode(TEXTS, "query"), tiny_encoder.encode(TEXTS, "query"), atol=1e-4)


def test_export_model_writes_a_folder_sentence_transformers_loads(trained_run, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    root, run_id, _model_dir, encoder = trained_run
    out = tmp_path / "exported"
    assert main(["--db", str(root / "study.db"), "export-model", run_id, str(out)]) == 0
    assert run_id in capsys.readouterr().out
    model = SentenceTransformer(str(out), device="cpu")
    for kind in ("query", "passage"):
        theirs = model.encode(TEXTS, prompt_name=kind, convert_to_numpy=True)
        np.testing.assert_allclose(theirs, encoder.encode(TEXTS, kind), atol=1e-5)


def test_export_model_of_a_run_without_a_model_is_one_line(trained_run, tmp_path, capsys):
    root = trained_run[0]
    assert main(["--db", str(root / "study.db"), "export-model", "0123456789abcdef", str(tmp_path / "x")]) == 2
    assert "has no model" in capsys.readouterr().err
    assert main(["--db", str(root / "study.db"), "export-model", "../etc", str(tmp_path / "x")]) == 2
    assert "is not a run id" in capsys.readouterr().err


def test_a_base_that_changed_since_the_run_is_refused(tiny_encoder, tmp_path):
    base = tmp_path / "base"
    tiny_encoder.save(base)
    cfg = config(model=str(base), trainable_layers=1, max_steps=2)
    result = train(cfg, easy_set(), load_encoder(str(base)), tmp_path / "run")
    load_encoder(str(result.model_dir))  # the base as it was: fine
    load_encoder("tiny:seed=3").save(base)
    with pytest.raises(ModelError, match="is not the one it was trained from"):
        load_encoder(str(result.model_dir))


def test_export_model_with_the_wrong_artifacts_folder_names_where_the_model_is(trained_run, tmp_path, capsys):
    """Advising keep_model would be wrong: the run kept its model, in the folder its log names."""
    import shutil

    from storage import queue
    from storage.db import open_db
    from tests.storage.studies import grid_study

    _root, _run_id, model_dir, _encoder = trained_run
    db = open_db(tmp_path / "s.db", artifacts_dir=tmp_path / "elsewhere")
    run_id = queue.submit_study(db, grid_study(sizes=(2,), seeds=(0,))).queued[0]
    workdir = tmp_path / "elsewhere" / "runs" / run_id
    shutil.copytree(model_dir, workdir / "model")
    queue.set_log_path(db, run_id, str(workdir / "run.log"))
    wrong = tmp_path / "wrong"
    assert main(["--db", str(tmp_path / "s.db"), "export-model", run_id, str(tmp_path / "x"),
                 "--artifacts", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert f"its model is in {workdir / 'model'}: give --artifacts {tmp_path / 'elsewhere'}" in err
    assert "keep_model" not in err
