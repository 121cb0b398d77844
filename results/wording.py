"""Counts in words, the way every page says them ("1 run", "2 runs")."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 run``, ``2 runs``; ``many`` for an irregular plural."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
