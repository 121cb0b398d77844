"""A setting is declared once, on its field: the run id's roles, the CSV columns and the form derive from it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from storage.queries import CONFIG_COLUMNS
from vocabulary.config import RunConfig
from vocabulary.settings import FormField, csv_columns, form_fields, names_with_role, setting


def test_the_roles_columns_and_form_entries_come_from_the_field_declarations():
    @dataclass(frozen=True)
    class Toy:
        a: int = setting(1, csv=True, form=FormField("A", "int", "how many", minimum=2))
        b: str = setting("x", role="operational")
        c: float = setting(0.5, role="evaluation", csv=True)
        d: bool = False  # undeclared: a training setting, in no column or form

    assert csv_columns(Toy) == ("a", "c")
    assert names_with_role(Toy, "operational") == {"b"}
    assert names_with_role(Toy, "training") == {"a", "d"}
    [form] = form_fields(Toy)
    assert (form.name, form.label, form.kind, form.minimum) == ("a", "A", "int", 2)


def test_run_config_declares_what_its_identity_csv_and_form_use():
    base = RunConfig(strategy="mono", train_size=16)
    operational = names_with_role(RunConfig, "operational")
    assert operational == {"checkpoint_every", "eval_batch_size", "compile", "keep_model"}
    assert dataclasses.replace(base, checkpoint_every=999, eval_batch_size=5).run_id == base.run_id
    assert dataclasses.replace(base, learning_rate=1e-4).run_id != base.run_id
    assert CONFIG_COLUMNS == csv_columns(RunConfig)
    assert CONFIG_COLUMNS[:4] == ("model", "strategy", "alpha", "train_size")
    assert {f.name for f in form_fields(RunConfig)} >= {"learning_rate", "budget", "checkpoint_every"}
