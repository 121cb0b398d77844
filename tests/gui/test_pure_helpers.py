"""The Qt-free helpers behind the pages: worker command line, number lists, log tail, background, leader table."""

from __future__ import annotations

import pytest

from gui.form_widgets import ListParseError, format_numbers, parse_numbers
from gui.log_view import INITIAL_TAIL_BYTES, LogTail
from gui.workers import worker_arguments


def test_worker_command_line_keeps_the_database_url_out_of_sight():
    assert worker_arguments("cpu") == ["-m", "hybridscale", "worker", "--device", "cpu"]  # the URL is in the environment
    assert worker_arguments("auto", exit_when_empty=True)[-1] == "--exit-when-empty"
    with pytest.raises(ValueError, match="device 'tpu': use one of auto, cpu, cuda"):
        worker_arguments("tpu")


def test_the_cli_reads_the_database_from_the_environment(monkeypatch, tmp_path):
    from hybridscale.cli import build_parser

    monkeypatch.setenv("HYBRIDSCALE_DB", str(tmp_path / "env.db"))
    assert build_parser().parse_args(["status"]).db == str(tmp_path / "env.db")
    assert build_parser().parse_args(["--db", "x.db", "status"]).db == "x.db"


def test_number_lists_parse_and_name_the_bad_item():
    assert parse_numbers("250, 500 1000", int, "sizes") == (250, 500, 1000)
    assert parse_numbers(" ", int, "sizes") == ()
    assert parse_numbers("0.25,0.5", float, "alphas") == (0.25, 0.5)
    with pytest.raises(ListParseError, match="'1.5' is not a whole number; sizes"):
        parse_numbers("1, 1.5", int, "sizes")
    assert format_numbers((0.5, 0.25)) == "0.5, 0.25" and format_numbers((1, 2)) == "1, 2"
    precise = (1.2345678e-4, 0.1 + 0.2)
    assert parse_numbers(format_numbers(precise), float, "alphas") == precise  # no digit lost on a round trip


def test_log_tail_reads_only_what_was_added_and_starts_near_the_end_of_a_long_log(tmp_path):
    path = tmp_path / "run.log"
    tail = LogTail(path)
    assert tail.read_new() == ""  # no file yet
    path.write_text("one\n")
    assert tail.read_new() == "one\n" and tail.read_new() == ""
    with path.open("a") as stream:
        stream.write("two\n")
    assert tail.read_new() == "two\n"
    path.write_text("x" * (INITIAL_TAIL_BYTES + 10))
    fresh = LogTail(path)
    assert len(fresh.read_new()) == INITIAL_TAIL_BYTES


def test_background_delivers_in_order_on_the_gui_thread_and_ignores_work_after_shutdown(qtbot):
    import threading

    from gui.background import Background

    runner = Background()
    results: list[tuple[int, bool]] = []
    main = threading.get_ident()
    for i in range(20):
        runner.submit(lambda i=i: (i, threading.get_ident() != main), results.append)
    errors: list[BaseException] = []
    runner.submit(lambda: 1 / 0, results.append, errors.append)
    qtbot.waitUntil(lambda: len(results) == 20 and len(errors) == 1, timeout=5000)
    assert results == [(i, True) for i in range(20)]  # in order, computed off the GUI thread
    assert isinstance(errors[0], ZeroDivisionError) and not runner.busy
    runner.shutdown()
    runner.submit(lambda: 2, results.append)  # a late timer: ignored, not an error
    qtbot.wait(50)
    assert len(results) == 20


def test_the_leader_table_bolds_every_tied_best_and_names_the_tie():
    from analysis.findings import build_findings
    from gui.findings_view import _leader_table
    from tests.analysis.test_findings import SIZES, ceiling_study

    [yo] = build_findings("flores/test", "cross", "nDCG@10", ceiling_study()).languages
    html = _leader_table(yo)
    assert html.count("<b>1.0000") == 3 * len(SIZES)  # mono, cross and hybrid at every size
    assert html.count("tie: mono, cross, hybrid α=0.5") == len(SIZES)
