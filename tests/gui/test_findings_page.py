"""The Findings page on a finished study's per-query values: a difference injected on half the queries is
flagged, none is never called significant, and the page stays usable while the tests run in the background."""

from __future__ import annotations

import pytest

from analysis.findings import SIGNIFICANCE
from gui.answer_view import FIGURE_HEIGHT
from gui.findings_view import FindingsView
from tests.gui.conftest import grab, make_window
from tests.gui.per_query_seed import per_query_study


def findings_page(qtbot, tmp_path, settings, gain: bool) -> FindingsView:
    db, study_id = per_query_study(tmp_path / "study.db", gain)
    window = make_window(qtbot, db, settings)
    window.tabs.setCurrentWidget(window.findings)
    qtbot.waitUntil(lambda: window.study.findData(study_id) >= 0, timeout=10_000)
    window.study.setCurrentIndex(window.study.findData(study_id))
    page = window.findings
    # The study's own findings: none is being computed any more (the all-studies ones may come first).
    qtbot.waitUntil(lambda: page.findings is not None and page.text.isEnabled(), timeout=60_000)
    return page


def test_a_gain_on_half_the_queries_is_flagged_in_both_languages(qtbot, tmp_path, settings):
    page = findings_page(qtbot, tmp_path, settings, gain=True)
    assert page.choices.chosen() == ("flores/test", "cross", "en", "nDCG@10")
    assert [(f.query_language, f.passage_language) for f in page.findings.languages] == [("sw", "en"), ("yo", "en")]
    for found in page.findings.languages:
        assert [row.size for row in found.leaders] == [16, 64]
        assert all(row.best == "hybrid α=0.5" for row in found.leaders)
        assert all(row.runner_up.baseline == "cross" and row.runner_up.p_holm < SIGNIFICANCE for row in found.leaders)
        assert [m.series for m in found.references] == ["untrained tiny:"]
    text = page.text.toPlainText()
    assert "hybrid α=0.5 is significantly better than cross at n = 16, 64" in text
    assert "Swahili (sw) queries → English (en) passages" in text and "Yoruba (yo) queries" in text
    assert "no fit: 2 training sizes, a fit needs at least 4" in text
    assert " *" in text  # the significant rows are marked
    assert "untrained tiny: (reference, not trained): " in text
    assert not any("(reference" in line and "seed" in line for line in text.splitlines())  # no seeds to count
    # The page opens with the answer of summary.md: the figure, then a table of the same means, then the sentences.
    answer = page.answer
    assert answer.isVisible() and answer.figure is not None and answer.layout_.indexOf(answer.figure) == 0
    qtbot.waitUntil(lambda: answer.y() + answer.height() <= page.text.y() and answer.figure.height() >= 300,
                    timeout=5_000)  # laid out above the tables once the event loop runs
    assert answer.answer.header == ("queries", "n", "cross", "hybrid α=0.5", "untrained tiny:")
    sw_64 = next(m for m in page.findings.languages[0].leaders[-1].means if m.series == "hybrid α=0.5")
    assert answer.answer.rows[1][:2] == ("sw", "64") and answer.answer.rows[1][3].startswith(f"{sw_64.mean:.4f}")
    shown = answer.text.text()
    assert "The answer: nDCG@10 on flores/test, cross setting: Swahili (sw) and Yoruba (yo) queries" in shown
    assert "hybrid α=0.5 − cross: sw +" in shown and len(answer.answer.sentences) <= 5
    # However little height the page gives it, the text follows the figure (it scrolls, never drawn under it).
    page.split.setSizes([150, 400])
    qtbot.waitUntil(lambda: answer.text.y() >= answer.figure.y() + answer.figure.height(), timeout=5_000)
    assert answer.figure.height() == FIGURE_HEIGHT and answer.verticalScrollBar().maximum() > 0
    grab(page.window(), tmp_path / "findings_gain.png")


def test_no_difference_is_never_called_significant(qtbot, tmp_path, settings):
    page = findings_page(qtbot, tmp_path, settings, gain=False)
    for found in page.findings.languages:
        versus_cross = [c for c in found.hybrid if c.baseline == "cross"]
        assert versus_cross
        assert all(c.mean_diff == pytest.approx(0.0) and c.p_holm >= SIGNIFICANCE for c in versus_cross)
    text = page.text.toPlainText()
    assert "hybrid α=0.5 is not significantly different from cross at any size" in text
    assert "significantly better than cross" not in text
    grab(page.window(), tmp_path / "findings_none.png")


def test_a_new_choice_greys_the_old_tables_and_a_choice_seen_before_is_shown_at_once(qtbot, tmp_path, settings):
    page = findings_page(qtbot, tmp_path, settings, gain=True)
    assert page.text.isEnabled() and page.status.text() == ""
    assert "Yoruba (yo) queries" in page.text.toPlainText()
    page.choices.languages.set_checked(("sw",))
    # Until the sw-only tables arrive, the sw and yo ones stay, greyed, under a line saying new ones are computed.
    assert not page.text.isEnabled() and page.status.text().startswith("Computing: testing nDCG@10")
    assert "Yoruba (yo) queries" in page.text.toPlainText()
    qtbot.waitUntil(lambda: page.text.isEnabled(), timeout=60_000)
    assert [f.query_language for f in page.findings.languages] == ["sw"] and page.status.text() == ""
    assert "Yoruba (yo) queries" not in page.text.toPlainText()
    # sw and yo were computed for this study already: answered from memory, with no wait for the background.
    page.choices.languages.set_checked(("sw", "yo"))
    assert [f.query_language for f in page.findings.languages] == ["sw", "yo"] and page.text.isEnabled()
    assert "Yoruba (yo) queries" in page.text.toPlainText()


def test_the_kept_findings_go_when_the_study_changes(qtbot, tmp_path, settings):
    page = findings_page(qtbot, tmp_path, settings, gain=True)
    window = page.window()
    kept = page.findings
    window.study.setCurrentIndex(window.study.findData(None))  # all studies: computed again, not taken from memory
    assert not page.text.isEnabled()
    qtbot.waitUntil(lambda: page.findings is not None and page.findings is not kept, timeout=60_000)
    assert page.findings.metric == kept.metric and page.text.isEnabled()
