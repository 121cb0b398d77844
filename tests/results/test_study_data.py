"""The setup form's downloads line: its wording, and sizes that are never waited for.

The hub is stood in for by plain functions (an answer, no answer until
released, a refusal): no machine here reaches it, and the point is what the
form says while it is slow or away. The engine's own answers (the real file
list, offline) are checked on the real widget in tests/gui/test_setup_downloads.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from results.study_data import DOWNLOAD_COMMAND, Download, SizeLookup, Sizes, downloads_text

CIRAL_SW = Download("ciral sw corpus", "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/swahili_passages.jsonl")
CIRAL_YO = Download("ciral yo corpus", "hf://datasets/CIRAL/ciral-corpus/passages-v1.0/yoruba_passages.jsonl")
MIRACL_SW = Download("miracl sw corpus", "hf://datasets/miracl/miracl-corpus/miracl-corpus-v1.0-sw/docs-*.jsonl.gz")
MMARCO = [Download("mmarco training data", f"hf://datasets/unicamp-dl/mmarco/data/{name}")
          for name in ("triples.train.ids.small.tsv", "google/collections/english_collection.tsv")]


def test_the_line_names_what_each_file_belongs_to_and_how_to_fetch_them():
    line = downloads_text(Sizes((CIRAL_SW, CIRAL_YO, MIRACL_SW), "size unknown offline"))
    assert line == ("Downloads: 3 hub files (ciral sw corpus, ciral yo corpus, miracl sw corpus; size unknown "
                    f"offline) — '{DOWNLOAD_COMMAND}' fetches them ahead for machines without internet")
    sized = (replace(CIRAL_YO, size=60_200_000), replace(MIRACL_SW, size=1_040_000_000, files=1))
    assert "(ciral yo corpus, miracl sw corpus; 1.1 GB in all)" in downloads_text(Sizes(sized))
    assert "(mmarco training data (2 files); 250 kB in all)" in downloads_text(
        Sizes(tuple(replace(d, size=125_000) for d in MMARCO)))
    assert downloads_text(Sizes(())) == ""


def test_sizes_from_the_hub_are_asked_once_per_set_and_kept():
    asked: list[tuple[str, ...]] = []
    arrived = threading.Event()

    def hub(downloads):
        asked.append(tuple(d.url for d in downloads))
        return [replace(d, size=1_000_000 * (i + 1), files=1) for i, d in enumerate(downloads)], None

    lookup = SizeLookup(hub)
    first = lookup.sizes([CIRAL_SW, CIRAL_YO], arrived.set)
    assert first.missing == "looking up the size" and all(d.size is None for d in first.downloads)
    assert arrived.wait(5)
    known = lookup.sizes([CIRAL_SW, CIRAL_YO], arrived.set)
    assert known.missing == "" and [d.size for d in known.downloads] == [1_000_000, 2_000_000]
    assert "3 MB in all" in downloads_text(known)
    assert asked == [(CIRAL_SW.url, CIRAL_YO.url)]


def test_a_hub_that_does_not_answer_never_holds_the_caller_and_a_late_answer_still_counts():
    release = threading.Event()
    arrived = threading.Event()

    def silent_hub(downloads):
        release.wait(30)
        return [replace(d, size=5_000_000) for d in downloads], None

    lookup = SizeLookup(silent_hub, wait_s=0.2)
    began = time.monotonic()
    assert lookup.sizes([MIRACL_SW], arrived.set).missing == "looking up the size"
    assert time.monotonic() - began < 0.1
    time.sleep(0.25)
    late = lookup.sizes([MIRACL_SW], arrived.set)
    assert late.missing == "size unknown: the hub did not answer within 0.2 s"
    assert "(miracl sw corpus; size unknown: the hub did not answer within 0.2 s)" in downloads_text(late)
    release.set()
    assert arrived.wait(5)
    assert "(miracl sw corpus; 5 MB in all)" in downloads_text(lookup.sizes([MIRACL_SW], arrived.set))


def test_an_unreachable_hub_says_offline_and_keeps_its_message_for_the_tooltip():
    arrived = threading.Event()
    cause = "Cannot reach https://huggingface.co/api/datasets/CIRAL/ciral-corpus: offline mode is enabled."
    lookup = SizeLookup(lambda downloads: (list(downloads), cause))
    lookup.sizes([CIRAL_SW], arrived.set)
    assert arrived.wait(5)
    answer = lookup.sizes([CIRAL_SW], arrived.set)
    assert (answer.missing, answer.detail) == ("size unknown offline", cause)


def test_a_lookup_that_raises_ends_as_unknown_not_as_looking_up_forever():
    arrived = threading.Event()

    def broken_hub(downloads):
        raise ConnectionError("connection reset by peer\nmore detail")

    lookup = SizeLookup(broken_hub)
    lookup.sizes([CIRAL_YO], arrived.set)
    assert arrived.wait(5)
    answer = lookup.sizes([CIRAL_YO], arrived.set)
    assert (answer.missing, answer.detail) == ("size unknown offline", "connection reset by peer")
