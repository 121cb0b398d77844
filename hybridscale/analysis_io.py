"""Stored results in, statistics out: the one place that joins :mod:`storage` and :mod:`analysis`.

``storage`` may not import ``analysis`` (nor the other way round), so the
shell turns a study's stored per-query values into
:class:`analysis.compare.RunValues` here, with the app's converter
(:func:`results.per_query.run_values`, Qt-free), and checks the request first:
an unknown study, eval set, setting or metric, a study without per-query
values, or fewer than two series to compare is a :class:`RequestError`, one
line that says what there is instead.
"""

from __future__ import annotations

from analysis.compare import Comparison, RunValues, compare
from results.per_query import run_values as stored_run_values
from storage.db import Database
from storage.queries import list_studies, query_value_cells, stored_measurements
from vocabulary.series import SeriesName


class RequestError(ValueError):
    """What was asked for is not in the database; the message names what is."""


def check_study(db: Database, study_id: int) -> str:
    """The study's name; RequestError naming the studies there are when ``study_id`` is not one of them."""
    studies = {s.id: s.name for s in list_studies(db)}
    if study_id not in studies:
        known = ", ".join(f"{i} ({name})" for i, name in studies.items()) or "none"
        raise RequestError(f"no study {study_id} in this database; studies: {known} (see 'hybridscale status')")
    return studies[study_id]


def measurements(db: Database, study_id: int) -> set[tuple[str, str, str]]:
    """(eval set, setting, metric) of every per-query value the study holds; RequestError when it holds none."""
    check_study(db, study_id)
    stored = stored_measurements(db, study_id)
    if not stored:
        raise RequestError(f"study {study_id} has no per-query values yet: no run of it has finished "
                           "(see 'hybridscale status'; runs finished before per-query values were kept have none)")
    return stored


def run_values(db: Database, study_id: int, eval_set: str, setting: str, metric: str) -> list[RunValues]:
    """The study's per-query values of one eval set, setting and metric, as analysis reads them."""
    stored = measurements(db, study_id)
    _check_choice("eval set", eval_set, {e for e, _, _ in stored})
    _check_choice("setting", setting, {s for e, s, _ in stored if e == eval_set}, f" of {eval_set}")
    _check_choice("metric", metric, {m for e, s, m in stored if (e, s) == (eval_set, setting)},
                  f" of {eval_set}, {setting}")
    return stored_values(db, study_id, eval_set, setting, metric)


def stored_values(db: Database, study_id: int, eval_set: str, setting: str, metric: str) -> list[RunValues]:
    """:func:`run_values` of a choice the caller has taken from :func:`measurements` (nothing to check again)."""
    return stored_run_values(query_value_cells(db, study_id, eval_set=eval_set, setting=setting, metric=metric))


def _check_choice(what: str, value: str, known: set[str], where: str = "") -> None:
    if value not in known:
        raise RequestError(f"no {what} {value!r}{where} in this study's per-query values; "
                           f"choose one of: {', '.join(sorted(known))}")


def comparisons(db: Database, study_id: int, eval_set: str, setting: str, metric: str,
                baseline: str | None = None) -> list[Comparison]:
    """Paired comparisons of the study's series (see :func:`analysis.compare.compare`); RequestError below two."""
    runs = run_values(db, study_id, eval_set, setting, metric)
    series = sorted({r.series for r in runs})
    if len(series) < 2:
        raise RequestError(f"{eval_set}, {setting}, {metric}: only {len(series)} series ({', '.join(series)}); "
                           "a comparison needs at least two")
    if baseline is not None:
        baseline = _series_named(baseline, series)
    return compare(runs, baseline=baseline)


def _series_named(name: str, series: list[SeriesName]) -> SeriesName:
    """The series called ``name``, or the one series of strategy ``name`` (``hybrid`` for ``hybrid α=0.5``)."""
    matches = [s for s in series if s == name] or [s for s in series if s.strategy == name]
    if len(matches) == 1:
        return matches[0]
    raise RequestError(f"no series {name!r} in these results (nor one series of a strategy {name!r}); "
                       f"choose one of: {', '.join(series)}")


def holm_family(found: list[Comparison], eval_set: str, setting: str, metric: str) -> str:
    """The sentence that says which tests ``p_holm`` was adjusted over."""
    pairs = sorted({(c.strategy, c.baseline) for c in found})
    sizes = sorted({c.size for c in found})
    cells = sorted({(c.query_language, c.passage_language) for c in found})
    return (f"Holm family: the {len(found)} comparisons listed ({eval_set}, {setting}, {metric}: {len(pairs)} "
            f"pair(s) of series x {len(sizes)} size(s) x {len(cells)} language cell(s)), adjusting p_randomization; "
            f"differences are strategy - baseline on per-query values averaged over the seeds both share")
