"""The answer a summary opens with: the primary measure's table and at most five sentences, from real tests."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.answer import MAX_SENTENCES, answer_markdown, build_answer
from analysis.compare import RunValues
from analysis.findings import build_findings
from vocabulary.series import SeriesName

SIZES = (16, 64, 256, 1024)
QUERIES = [f"q{i:02d}" for i in range(40)]
UNTRAINED, BM25 = SeriesName("untrained m"), SeriesName("BM25", lexical=True)
MONO, HYBRID = SeriesName("mono", "mono"), SeriesName("hybrid α=0.5", "hybrid", 0.5)


def two_languages() -> list[RunValues]:
    """sw: training lifts every series along a saturating curve, hybrid most; yo: nothing moves (noise only).

    Also an English row, which the answer leaves out (it is about sw and yo)."""
    rng = np.random.default_rng(8)
    runs = []
    for language, lift in (("sw", 0.3), ("yo", 0.0), ("en", 0.3)):
        base = rng.uniform(0.2, 0.5, len(QUERIES))
        runs.append(RunValues(UNTRAINED, 0, "", language, "en", dict(zip(QUERIES, base))))
        runs.append(RunValues(BM25, 0, "", language, "en", dict(zip(QUERIES, base - 0.1))))
        for size in SIZES:
            level = lift * (1 - (size / 16) ** -0.5)
            for seed in ("0", "1", "2"):
                for series, extra in ((MONO, 0.0), (HYBRID, 0.5 * lift)):
                    values = base + level + extra * level + rng.normal(0, 0.05, len(QUERIES))
                    runs.append(RunValues(series, size, seed, language, "en", dict(zip(QUERIES, values))))
    return runs


def test_the_answer_opens_with_the_table_and_says_what_moved_in_at_most_five_sentences():
    runs = two_languages()
    findings = build_findings("afriqa/test", "cross", "nDCG@10", runs)
    answer = build_answer(findings)
    assert answer.header == ("queries", "n", "mono", "hybrid α=0.5", "BM25", "untrained m")
    assert [row[:2] for row in answer.rows] == [(q, str(n)) for q in ("sw", "yo") for n in SIZES]  # no English row
    # Each cell is the mean over seeds of the per-query mean, ± the sd over seeds, computed here by hand.
    seed_means = [np.mean(list(r.values.values())) for r in runs
                  if (r.series, r.size, r.query_language) == (HYBRID, 256, "yo")]
    yo_256 = answer.rows[6]
    assert yo_256[3] == f"{np.mean(seed_means):.4f} ± {np.std(seed_means, ddof=1):.4f}"
    [untrained_yo] = [r for r in runs if (r.series, r.query_language) == (UNTRAINED, "yo")]
    assert yo_256[5] == f"{np.mean(list(untrained_yo.values.values())):.4f}"  # one run: no spread

    assert 1 <= len(answer.sentences) <= MAX_SENTENCES
    moved, still, lexical, hybrid, trend = answer.sentences
    assert moved.startswith("Moved beyond noise") and "sw hybrid α=0.5 vs untrained m +" in moved
    assert "BM25" not in moved + still and "yo mono vs untrained m" not in moved  # BM25 is no measure of movement
    assert still.startswith("Did not move beyond noise: yo mono vs untrained m +")
    assert lexical.startswith("Against the lexical reference (* Holm p < 0.05): sw hybrid α=0.5 vs BM25 +")
    assert lexical.count(" *") == 2  # sw and yo are both well above BM25 (it is the untrained values - 0.1)
    [sw_test] = [c for c in next(f for f in findings.languages if f.query_language == "sw").hybrid if c.size == 1024]
    assert f"hybrid α=0.5 − mono: sw {sw_test.mean_diff:+.4f} (Holm p {sw_test.p_holm:.3g}) *" in hybrid
    assert "sw: every series has a trend" in trend and "yo: every series flat within noise" in trend

    markdown = "\n".join(answer_markdown(answer, "plots/answer.png"))
    assert markdown.startswith("## The answer: nDCG@10 on afriqa/test, cross setting: Swahili (sw) and Yoruba (yo) "
                               "queries, English passages (higher is better)\n\n![")
    assert "(plots/answer.png)" in markdown and "| yo | 1024 |" in markdown
    assert markdown.endswith("\n\n" + "\n".join(f"- {sentence}" for sentence in answer.sentences) + "\n")


def test_no_target_language_gives_no_answer():
    runs = [r for r in two_languages() if r.query_language == "en"]
    assert build_answer(build_findings("afriqa/test", "cross", "nDCG@10", runs)) is None


@pytest.mark.parametrize("sizes", [(16,), (16, 64)])
def test_too_few_sizes_say_so_instead_of_a_trend(sizes):
    runs = [r for r in two_languages() if r.size in (0, *sizes)]
    answer = build_answer(build_findings("afriqa/test", "cross", "nDCG@10", runs))
    assert answer.sentences[-1].endswith("sw: too few sizes to tell; yo: too few sizes to tell.")


def test_the_summary_answers_on_the_eval_set_built_for_the_question_in_its_headline_measure():
    from dataclasses import replace

    from hybridscale.report import primary_findings

    measured = build_findings("flores/test", "cross", "nDCG@10", two_languages())
    afriqa = replace(measured, eval_set="afriqa/test (gold passages only)")
    ciral_ndcg10 = replace(measured, eval_set="ciral/test-b")
    ciral_ndcg20 = replace(measured, eval_set="ciral/test-b", metric="nDCG@20")
    mono = replace(measured, eval_set="ciral/test-b", setting="mono", metric="nDCG@20")
    assert primary_findings([measured, afriqa]) is afriqa  # not the first eval set by name: the question's
    assert primary_findings([mono, measured, afriqa, ciral_ndcg10, ciral_ndcg20]) is ciral_ndcg20
    assert primary_findings([mono, ciral_ndcg10]) is mono  # CIRAL in nDCG@10 is not its headline
