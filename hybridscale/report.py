"""``hybridscale report``: a study's answer, written to a folder from the database alone.

So a study run elsewhere (on a cluster) can be reported here, everything
comes from stored rows: ``summary.md`` opens with the answer
(:mod:`analysis.answer`: one figure of the primary measure's scaling curves
for sw and yo with the references, a table of it at each size, at most five
sentences; a series whose runs ran on different software or hardware is
flagged right below it, as its comparisons are not like for like), and puts
everything else under an appendix heading: what produced the runs (one line
from their provenance records: "all runs on torch X, transformers Y,
1 × device", or what differs), then the findings (:mod:`analysis.findings`:
per eval set and language, each series' mean ± seed spread at each size, the
best, its difference to the runner-up and to the references with Holm
p-values, the hybrid comparisons, the fits where the points show a trend,
then sentences generated from those rows only), followed by the
CSVs: ``report.csv`` (tidy metrics), ``per_query.csv``, ``comparisons.csv``
(every pair of series at every size and language cell, the fields of
``hybridscale compare``) and ``fits.csv``, and the plots (drawn headless by
the app's own plotting code). The demo's summary uses the same findings
code (:func:`findings_markdown`).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from analysis.answer import answer_languages, answer_markdown, build_answer
from analysis.compare import FIELDS, RunValues, compare
from analysis.findings import Findings, build_findings, to_markdown
from analysis.fits import ScalingFit
from hybridscale.analysis_io import check_study, measurements, stored_values
from storage.db import Database
from storage.export import export_csv, export_per_query_csv, spreadsheet_safe
from storage.provenance import latest_provenance, run_rows
from storage.queries import stored_passage_languages, tidy_metrics
from vocabulary.answer_choice import answer_rank, dataset_of, headline_metric
from vocabulary.languages import TARGET_LANGUAGES
from vocabulary.printable import escape_unprintable
from vocabulary.provenance import differences, summary_line

#: The (setting, metric) pairs the summary reports for each eval set, where the study has them; HEADLINE
#: stands for the eval set's headline measure (:func:`vocabulary.answer_choice.headline_metric`).
HEADLINE = "headline"
REPORTED: tuple[tuple[str, str], ...] = (("cross", HEADLINE), ("mono", HEADLINE), ("multi", HEADLINE),
                                          ("multi", "LangBias"))
MEASUREMENT_COLUMNS: tuple[str, ...] = ("eval_set", "setting", "metric")
FIT_COLUMNS: tuple[str, ...] = (
    *MEASUREMENT_COLUMNS, "query_language", "passage_language", "strategy", "alpha", "series", "sizes", "a", "a_low",
    "a_high", "b",
    "b_low", "b_high", "c", "c_low", "c_high", "resamples", "no_fit",
)
#: What a scaling figure shows: eval set, setting, metric, passage language, query languages.
FigureChoice = tuple[str, str, str, str, tuple[str, ...]]


@dataclass(frozen=True)
class ReportFiles:
    summary: Path
    tidy: Path
    per_query: Path
    comparisons: Path
    fits: Path
    plots: tuple[Path, ...]


def reported(db: Database, study_id: int) -> list[tuple[str, str, str]]:
    """The (eval set, setting, metric) triples of the summary, in eval-set order, then :data:`REPORTED` order.

    The multilingual pool of an eval set whose passages are in one language
    (AfriQA's English passages) is the cross setting again, so it is left out.
    """
    stored = measurements(db, study_id)
    pools = stored_passage_languages(db, study_id)
    eval_sets = sorted({e for e, _, _ in stored})
    triples = [(e, s, headline_metric(e) if m == HEADLINE else m) for e in eval_sets for s, m in REPORTED
               if s != "multi" or len(pools.get(e, ())) > 1]
    return [triple for triple in triples if triple in stored]


def reported_runs(db: Database, study_id: int) -> dict[tuple[str, str, str], list[RunValues]]:
    """The per-query values of each :func:`reported` triple, read once for its findings and its comparisons."""
    return {triple: stored_values(db, study_id, *triple) for triple in reported(db, study_id)}


def study_findings(measured: dict[tuple[str, str, str], list[RunValues]]) -> list[Findings]:
    return [build_findings(*triple, runs) for triple, runs in measured.items()]


def findings_markdown(all_findings: Sequence[Findings]) -> list[str]:
    lines = []
    for found in all_findings:
        lines += to_markdown(found)
    return lines


def primary_findings(all_findings: Sequence[Findings]) -> Findings | None:
    """The findings the answer is about (:mod:`vocabulary.answer_choice`: the first setting and eval set in its
    order, in the eval set's headline measure), None when no sw or yo row was trained."""
    candidates = [found for found in all_findings
                  if found.metric == headline_metric(found.eval_set) and answer_languages(found)]
    return min(candidates, key=lambda found: answer_rank(found.eval_set, found.setting), default=None)


def summary_lines(title: str, all_findings: Sequence[Findings], rows: list[dict], out: Path,
                  drawn: dict[FigureChoice, Path], context: Sequence[str] = (), flags: Sequence[str] = ()
                  ) -> list[str]:
    """A summary: the answer (its figure written to ``out``/plots/answer.png, copied from ``drawn`` where one of
    those shows the same) and the ``flags`` of :func:`provenance_lines` (a reader of the answer alone must see
    them), then the appendix: ``context`` (what ran) and every findings table."""
    return [f"# {title}", "", *answer_section(all_findings, rows, out, drawn), *flags,
            "## Appendix: what ran and every table", "", *context, *findings_markdown(all_findings)]


def answer_section(all_findings: Sequence[Findings], rows: list[dict], out: Path,
                   drawn: dict[FigureChoice, Path]) -> list[str]:
    primary = primary_findings(all_findings)
    answer = None if primary is None else build_answer(primary)
    if primary is None or answer is None:
        return ["## The answer", "", "No trained run was measured in an eval set's headline measure on sw or yo "
                "queries, so there is nothing to answer yet; the appendix has what was measured.", ""]
    cells = answer_languages(primary)
    try:
        figure = draw_scaling(rows, out / "plots" / "answer.png", drawn, eval_set=primary.eval_set,
                              setting=primary.setting, metric=primary.metric,
                              passage_language=cells[0].passage_language,
                              query_languages=tuple(c.query_language for c in cells))
    except LookupError:
        figure = None
    return answer_markdown(answer, figure.relative_to(out).as_posix() if figure else None)


def draw_scaling(rows: list[dict], path: Path, drawn: dict[FigureChoice, Path], *, eval_set: str, setting: str,
                 metric: str, passage_language: str, query_languages: tuple[str, ...]) -> Path:
    """The scaling figure of one choice, written to ``path`` and noted in ``drawn``; a choice ``drawn`` already
    holds (the answer's figure is often one of the report's curves) is copied rather than drawn again."""
    choice = (eval_set, setting, metric, passage_language, tuple(query_languages))
    if choice in drawn:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(drawn[choice], path)
        return path
    from gui.figure_files import save_scaling_figure  # Qt, headless: only once there is something to draw

    drawn[choice] = save_scaling_figure(rows, path, eval_set=eval_set, setting=setting, metric=metric,
                                        passage_language=passage_language, query_languages=query_languages)
    return drawn[choice]


def write_report(db: Database, study_id: int, out: Path) -> ReportFiles:
    """Write every report file of the study into ``out`` (created if missing)."""
    name = check_study(db, study_id)
    out.mkdir(parents=True, exist_ok=True)
    measured = reported_runs(db, study_id)
    all_findings = study_findings(measured)
    files = ReportFiles(out / "summary.md", out / "report.csv", out / "per_query.csv", out / "comparisons.csv",
                        out / "fits.csv", ())
    export_csv(db, files.tidy, study_id=study_id)
    export_per_query_csv(db, files.per_query, study_id=study_id)
    _write_rows(files.comparisons, (*MEASUREMENT_COLUMNS, *FIELDS), _comparison_rows(measured))
    _write_rows(files.fits, FIT_COLUMNS, _fit_rows(all_findings))
    rows = tidy_metrics(db, study_id)
    drawn: dict[FigureChoice, Path] = {}
    plots = tuple(write_figures(rows, out / "plots", drawn))
    provenance, flags = provenance_lines(db, study_id)
    lines = [*summary_lines(f"{escape_unprintable(name)}: findings", all_findings, rows, out, drawn,
                            [f"Provenance: {provenance}.", ""], flags),
             "Files: report.csv (metrics), per_query.csv, comparisons.csv (every pair of series; Holm over each eval "
             "set, setting and metric's comparisons), fits.csv; plots: " + (", ".join(p.name for p in plots) or "none"),
             ""]
    files.summary.write_text("\n".join(lines), encoding="utf-8")
    return ReportFiles(files.summary, files.tidy, files.per_query, files.comparisons, files.fits, plots)


def provenance_lines(db: Database, study_id: int) -> tuple[str, list[str]]:
    """From the latest provenance record of each of the study's runs, read once: what they ran on
    (:func:`vocabulary.provenance.summary_line`), and one line per series whose runs differ in software or
    hardware (then a blank line; none when none differ)."""
    records = latest_provenance(db, study_id)
    return summary_line(list(records.values())), _series_flags(db, study_id, records)


def _series_flags(db: Database, study_id: int, records: dict[str, dict]) -> list[str]:
    by_series: dict[str, list[dict]] = {}
    for run in run_rows(db, study_id, records):
        if run["run_id"] in records:
            by_series.setdefault(run["series"], []).append(records[run["run_id"]])
    flags = []
    for series, found in by_series.items():
        differing = differences(found)
        if differing:
            what = "; ".join(f"{k} ({' vs '.join(str(v) for v in values)})" for k, values in differing.items())
            flags.append(f"- **Not like for like:** the runs of {series} differ in {what}; comparing across "
                         "them mixes software or hardware with the strategy's effect.")
    return [*flags, ""] if flags else []


def _comparison_rows(measured: dict[tuple[str, str, str], list[RunValues]]):
    for (eval_set, setting, metric), runs in measured.items():
        for comparison in compare(runs):
            yield {"eval_set": eval_set, "setting": setting, "metric": metric, **comparison.as_dict()}


def _fit_rows(all_findings: Sequence[Findings]):
    for found in all_findings:
        for language in found.languages:
            for series, fit in language.fits.items():
                row = {"eval_set": found.eval_set, "setting": found.setting, "metric": found.metric,
                       "query_language": language.query_language, "passage_language": language.passage_language,
                       "strategy": series.strategy, "alpha": series.alpha, "series": series}
                if isinstance(fit, ScalingFit):
                    row.update(sizes=" ".join(map(str, fit.sizes)), a=fit.curve.a, b=fit.curve.b, c=fit.curve.c,
                               resamples=fit.resamples)
                    for name in ("a", "b", "c"):
                        interval = getattr(fit, f"{name}_interval")
                        if interval is not None:
                            row[f"{name}_low"], row[f"{name}_high"] = interval
                else:
                    row["no_fit"] = fit
                yield row


def _write_rows(path: Path, columns: Sequence[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})


def write_figures(rows: list[dict], folder: Path, drawn: dict[FigureChoice, Path]) -> list[Path]:
    """Scaling curves of sw and yo queries per eval set in its headline measure (cross: English passages, else
    the first other language; multi: the pool; noted in ``drawn``), and language-bias heatmaps where MeanRank
    was measured; headless."""
    from gui.figure_files import save_heatmap_figure

    folder.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    present = {(r["eval_set"], r["setting"], r["metric"]) for r in rows}
    for eval_set in sorted({e for e, _, _ in present}):
        stem, metric = dataset_of(eval_set), headline_metric(eval_set)
        languages = {r["query_language"] for r in rows if r["eval_set"] == eval_set}
        targets = tuple(sorted(languages & set(TARGET_LANGUAGES)))
        # A pool of one passage language (AfriQA's English passages) is the cross figure again and has no
        # language bias to map.
        pooled = len(passage_languages(rows, eval_set)) > 1
        for setting in ("cross", "multi") if pooled else ("cross",):
            if (eval_set, setting, metric) not in present or not targets:
                continue
            images.append(draw_scaling(
                rows, folder / f"scaling_{stem}_{setting}.png", drawn, eval_set=eval_set, setting=setting,
                metric=metric, passage_language=_passage_side(rows, eval_set, setting), query_languages=targets,
            ))
        if pooled and (eval_set, "multi", "MeanRank") in present:
            images.append(save_heatmap_figure(rows, folder / f"bias_{stem}.png", eval_set=eval_set))
    return images


def passage_languages(rows: list[dict], eval_set: str) -> set[str]:
    """The passage languages ``eval_set``'s rows search, its multilingual pool left out: a pool of one language
    is that language's search again, so the figures and tables leave it out."""
    return {r["passage_language"] for r in rows if r["eval_set"] == eval_set} - {"all"}


def _passage_side(rows: list[dict], eval_set: str, setting: str) -> str:
    if setting == "multi":
        return "all"
    sides = sorted({r["passage_language"] for r in rows if (r["eval_set"], r["setting"]) == (eval_set, setting)}
                   - {"all", *TARGET_LANGUAGES})
    return "en" if "en" in sides else (sides[0] if sides else "all")
