"""A small, deterministic sentence splitter for SQuAD-style contexts in 12 scripts.

Why not a library: the answer sentence is training data and the XQuAD-R
candidate set, so its boundaries must be reproducible on every machine with
no model download. Rules:

* A sentence ends after ``. ! ? ؟ ।`` followed by whitespace (or the end),
  and right after the full-width ``。 ！ ？`` (Chinese puts no space there).
* Thai has no sentence punctuation; a space between two Thai characters
  separates clauses and sentences, but also names and list items (pieces
  average 38 characters on XQuAD). So Thai is cut at those whitespace runs
  (and after ``. ! ?`` + space), then consecutive pieces are joined until each
  sentence has at least ``THAI_MIN_CHARS`` characters (a short tail joins the
  sentence before it). With 100, XQuAD th has 5.1 sentences per paragraph,
  en 5.2.
* No split may cut an answer: the sentences an answer span touches are merged
  (see :func:`merge_across`), so every answer lies inside one sentence.

Known limits: abbreviations split (``Dr. Smith``, ``U.S. Army``) unless an
answer spans them; a terminal followed by a closing quote (``."``) does not
split; Thai "sentences" are often clauses. These only move boundaries, the
same way in every run.
"""

from __future__ import annotations

import re
from typing import Iterable

Span = tuple[int, int]

#: The shortest Thai sentence, in characters, before the next piece is joined to it.
THAI_MIN_CHARS = 100

_BOUNDARY = re.compile(r"(?<=[.!?؟।])\s+|(?<=[。！？])\s*")
_THAI_BOUNDARY = re.compile(r"(?<=[\u0E00-\u0E7F])\s+(?=[\u0E00-\u0E7F])|(?<=[.!?])\s+")


def sentence_spans(text: str, language: str) -> list[Span]:
    """(start, end) character offsets of the sentences of ``text``, whitespace trimmed, in order."""
    pattern = _THAI_BOUNDARY if language == "th" else _BOUNDARY
    spans: list[Span] = []
    start = 0
    for match in pattern.finditer(text):
        _append_trimmed(spans, text, start, match.start())
        start = match.end()
    _append_trimmed(spans, text, start, len(text))
    return _join_short(spans, THAI_MIN_CHARS) if language == "th" else spans


def merge_across(spans: list[Span], protected: Iterable[Span]) -> list[Span]:
    """``spans`` with every run of sentences that one protected span crosses merged into one."""
    merged = list(spans)
    for first, last in sorted(protected):
        touched = [i for i, (start, end) in enumerate(merged) if start < last and first < end]
        if len(touched) > 1:
            i, j = touched[0], touched[-1]
            merged[i : j + 1] = [(merged[i][0], merged[j][1])]
    return merged


def containing(spans: list[Span], offset: int) -> int:
    """Index of the span that holds character ``offset``."""
    for index, (start, end) in enumerate(spans):
        if start <= offset < end:
            return index
    raise ValueError(f"offset {offset} is in no sentence")


def _join_short(spans: list[Span], minimum: int) -> list[Span]:
    joined: list[Span] = []
    for start, end in spans:
        if joined and joined[-1][1] - joined[-1][0] < minimum:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    if len(joined) > 1 and joined[-1][1] - joined[-1][0] < minimum:
        tail = joined.pop()
        joined[-1] = (joined[-1][0], tail[1])
    return joined


def _append_trimmed(spans: list[Span], text: str, start: int, end: int) -> None:
    piece = text[start:end]
    stripped = piece.strip()
    if stripped:
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
