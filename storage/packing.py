"""Per-query values packed into one blob per cell: float64, little-endian, in query order;
the query ids zlib-compressed, newline-separated (ids repeat a prefix, so they shrink about fivefold)."""

from __future__ import annotations

import sys
import zlib
from array import array
from typing import Sequence

QUERY_ID_SEPARATOR = "\n"


def pack_values(values: Sequence[float]) -> bytes:
    packed = array("d", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack_values(blob: bytes) -> list[float]:
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def pack_ids(query_ids: Sequence[str]) -> bytes:
    for query_id in query_ids:
        if QUERY_ID_SEPARATOR in query_id:
            raise ValueError(f"query id {query_id!r} holds a line break; it cannot be stored")
    return zlib.compress(QUERY_ID_SEPARATOR.join(query_ids).encode("utf-8"))


def unpack_ids(blob: bytes) -> list[str]:
    text = zlib.decompress(blob).decode("utf-8")
    return text.split(QUERY_ID_SEPARATOR) if text else []
