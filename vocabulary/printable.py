"""Characters a name must not carry into a terminal or a file: controls and bidirectional overrides.

An ESC in a study name clears the terminal of whoever ``cat``s a CSV that
holds it, a BEL rings, a NUL cuts the line in C tools, and U+202E shows
``exe.txt`` as ``txt.exe``. Submit refuses them in names (:func:`check_printable`);
the file writers escape whatever reached the database anyway
(:func:`escape_unprintable`), the way ``repr`` shows them in ``status``.
"""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional embeddings,
#: overrides and isolates. Letters, marks and joiners of every script are untouched.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def escape_unprintable(text: str) -> str:
    """``text`` with every unprintable character but a tab or a newline (whitespace that CSV quotes) written as
    its escape (``\\x1b``, ``\\u202e``)."""
    return _UNPRINTABLE.sub(lambda m: m.group() if m.group() in "\t\n" else _escape(m), text)


def check_printable(text: str) -> str | None:
    """None, or a sentence naming the first unprintable character of ``text`` and what to do."""
    found = _UNPRINTABLE.search(text)
    if found is None:
        return None
    return (f"holds the control character {_escape(found)} at position {found.start() + 1}; "
            "remove it (names are shown in terminals and files)")
