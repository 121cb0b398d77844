"""The answer a summary opens with: the primary measure for sw and yo queries, one table and at most five sentences.

A reader should see in a minute what the study found, so the answer takes one
:class:`~analysis.findings.Findings` (the primary measure) and keeps only the
target languages' rows: a table of every series' mean at every size beside
the references, and sentences built from the findings' own tests (Holm p of
their families, so nothing is tested twice): which differences between the
best trained series and a reference at the largest size are significant (what
moved) and which are not, hybrid against each other strategy at the largest
size, and which curves have a trend over the sizes at all (the fits' slope
test). Everything else stays in the findings tables, under the appendix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from analysis.compare import Comparison
from analysis.findings import SIGNIFICANCE, Findings, LanguageFindings, Mean, signed
from vocabulary.languages import TARGET_LANGUAGES, language_name
from vocabulary.records import ALL
from vocabulary.series import series_order

#: The issue's limit: what moved, what did not, hybrid against the rest, and the trend, in at most five.
MAX_SENTENCES = 5


@dataclass(frozen=True)
class Answer:
    """The answer block: a heading, a table (header and rows of text cells) and its sentences."""

    heading: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    sentences: tuple[str, ...]


def answer_languages(findings: Findings, languages: Sequence[str] = TARGET_LANGUAGES) -> list[LanguageFindings]:
    """One language cell per target query language: its pool (or English passages) first, else its first cell."""
    chosen = []
    for language in languages:
        cells = [f for f in findings.languages if f.query_language == language and f.leaders]
        cells.sort(key=lambda f: (f.passage_language not in (ALL, "en"), f.passage_language))
        chosen += cells[:1]
    return chosen


def build_answer(findings: Findings, languages: Sequence[str] = TARGET_LANGUAGES) -> Answer | None:
    """The answer of ``findings`` for ``languages`` (None when none of them has a trained run)."""
    cells = answer_languages(findings, languages)
    if not cells:
        return None
    series = sorted({m.series for f in cells for row in f.leaders for m in row.means}, key=series_order)
    references = sorted({m.series for f in cells for m in f.references}, key=series_order)
    header = ("queries", "n", *series, *references)
    rows = []
    for found in cells:
        by_reference = {m.series: m for m in found.references}
        for row in found.leaders:
            by_series = {m.series: m for m in row.means}
            rows.append((found.query_language, str(row.size), *(_value(by_series.get(s)) for s in series),
                         *(_value(by_reference.get(r)) for r in references)))
    sentences = [*_moved(cells), *_hybrid(cells), _trend(cells)]
    return Answer(_heading(findings, cells), header, tuple(rows), tuple(sentences[:MAX_SENTENCES]))


def _heading(findings: Findings, cells: list[LanguageFindings]) -> str:
    passages = sorted({f.passage_language for f in cells})
    side = "the multilingual pool" if passages == [ALL] else ", ".join(f"{language_name(p)} passages" for p in passages)
    direction = "lower is better" if findings.lower_is_better else "higher is better"
    queries = " and ".join(f"{language_name(f.query_language)} ({f.query_language})" for f in cells)
    return f"{findings.metric} on {findings.eval_set}, {findings.setting} setting: {queries} queries, {side} ({direction})"


def _value(mean: Mean | None) -> str:
    if mean is None:
        return "–"
    return f"{mean.mean:.4f}" + (f" ± {mean.spread:.4f}" if mean.spread is not None else "")


def _significant(comparison: Comparison) -> bool:
    return comparison.p_holm < SIGNIFICANCE


def _test(comparison: Comparison) -> str:
    return f"{signed(comparison.mean_diff)} (Holm p {comparison.p_holm:.3g})"


def _moved(cells: list[LanguageFindings]) -> list[str]:
    """What moved and what did not: the best trained series at the largest size against the untrained model.

    Only the base model evaluated as it is tells what training moved; BM25
    gets a sentence of its own (a difference to it is a comparison of two
    kinds of retriever, not movement).
    """
    moved, still, lexical = [], [], []
    for found in cells:
        last = found.leaders[-1]
        for comparison in last.versus_references:
            text = f"{found.query_language} {last.best} vs {comparison.baseline} {_test(comparison)}"
            if getattr(comparison.baseline, "lexical", False):
                lexical.append(text + (" *" if _significant(comparison) else ""))
            else:
                (moved if _significant(comparison) else still).append(text)
    size = max(f.leaders[-1].size for f in cells)
    what = f"the best trained series at the largest size, n = {size}, against the untrained model"
    sentences = []
    if moved:
        sentences.append(f"Moved beyond noise ({what}, Holm p < {SIGNIFICANCE}): {'; '.join(moved)}.")
    if still:
        context = "" if moved else f" ({what}, Holm p ≥ {SIGNIFICANCE})"
        sentences.append(f"Did not move beyond noise{context}: {'; '.join(still)}.")
    if not moved and not still:
        sentences.append("The untrained model was not measured, so nothing is said about what training moved.")
    if lexical:
        sentences.append(f"Against the lexical reference (* Holm p < {SIGNIFICANCE}): {'; '.join(lexical)}.")
    return sentences


def _hybrid(cells: list[LanguageFindings]) -> list[str]:
    """Every hybrid series against each other strategy at the largest size, sw and yo side by side, one sentence."""
    parts = []
    hybrids = sorted({c.strategy for f in cells for c in f.hybrid}, key=series_order)
    for hybrid in hybrids:
        others = sorted({c.baseline for f in cells for c in f.hybrid if c.strategy == hybrid}, key=series_order)
        for other in others:
            tests = []
            for found in cells:
                last = found.leaders[-1].size
                match = [c for c in found.hybrid if (c.strategy, c.baseline, c.size) == (hybrid, other, last)]
                tests += [f"{found.query_language} {_test(c)}{' *' if _significant(c) else ''}" for c in match]
            if tests:
                parts.append(f"{hybrid} − {other}: {', '.join(tests)}")
    if not parts:
        return []
    return [f"Hybrid against each other strategy at the largest size (* Holm p < {SIGNIFICANCE}): "
            + "; ".join(parts) + "."]


def _trend(cells: list[LanguageFindings]) -> str:
    """Which curves move with the training size at all: the fits' slope test of the means over log n."""
    parts = []
    for found in cells:
        moving = [s for s, t in found.trends.items() if t.significant]
        if not found.trends:
            parts.append(f"{found.query_language}: too few sizes to tell")
        elif not moving:
            parts.append(f"{found.query_language}: every series flat within noise")
        elif len(moving) == len(found.trends):
            parts.append(f"{found.query_language}: every series has a trend")
        else:
            parts.append(f"{found.query_language}: a trend in {', '.join(moving)}, the rest flat within noise")
    return (f"Over the training sizes (slope of the means over log n, p < {SIGNIFICANCE}; fits in the appendix): "
            + "; ".join(parts) + ".")


def answer_markdown(answer: Answer, figure: str | None) -> list[str]:
    """The answer as Markdown: heading, figure (a path relative to the summary), table, sentences."""
    lines = [f"## The answer: {answer.heading}", ""]
    if figure:
        lines += [f"![scaling curves of {answer.heading.split(':')[0]}]({figure})", ""]
    lines.append("| " + " | ".join(answer.header) + " |")
    lines.append("|---" * len(answer.header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in answer.rows]
    lines += ["", *(f"- {sentence}" for sentence in answer.sentences), ""]
    return lines
