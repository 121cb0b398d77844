"""A passage corpus kept on disk, not in memory: what every eval loader hands the evaluator.

A million passages as Python objects take about 1.5 GB, held for the whole
run (eval sets are loaded before training starts) although each step of an
evaluation needs only a shard of them at a time: encoding reads them in
order, BM25 indexes them in order, the texts file wants a few hundred. So a
loader's passages are written, as they are read, to an Arrow IPC file of
:data:`BATCH_ROWS`-row record batches (id, language, title, text) in the
temporary folder, and :class:`StoredPassages` reads a batch back when asked:
memory holds the batch being read, never the corpus.

The file is read with ``pread`` (Arrow's ``OSFile``), not memory-mapped:
pages of a mapped file count as the process's resident memory once touched,
so a full pass would look like holding the corpus. On POSIX the file is
unlinked as soon as it is open, so it goes with the process however that
ends; elsewhere it is removed when the object is collected. Its size is
about the corpus's text (CIRAL sw: about 1 GB in ``TMPDIR``).
"""

from __future__ import annotations

import bisect
import os
import tempfile
import threading
import weakref
from itertools import islice
from typing import Iterable, Iterator, Sequence, overload

import pyarrow as pa

from vocabulary.records import Passage

#: Passages per record batch: what one read brings into memory (a few MB of text).
BATCH_ROWS = 4096
_FIELDS = ("id", "language", "title", "text")
_SCHEMA = pa.schema([(name, pa.string()) for name in _FIELDS])


class StoredPassages(Sequence[Passage]):
    """Passages in an Arrow file, read a record batch at a time; a read-only sequence of :class:`Passage`.

    Equal to any sequence holding the same passages in the same order, so a
    stored corpus compares like the tuple it replaces.
    """

    def __init__(self, path: str, rows: int, starts: list[int]):
        self._file = pa.OSFile(path)
        self._reader = pa.ipc.open_file(self._file)
        self._rows = rows
        self._starts = starts  # the first row of each record batch
        self._lock = threading.Lock()
        self._cached: tuple[int, list[Passage]] | None = None
        try:
            os.unlink(path)  # the open file lives on, and is freed whenever the process ends
        except OSError:  # Windows keeps an open file's name
            weakref.finalize(self, _close_and_remove, self._file, path)

    @classmethod
    def write(cls, passages: Iterable[Passage], folder: str | None = None) -> "StoredPassages":
        """Store ``passages`` (any iterable, read once) in a new temporary file under ``folder`` (default:
        ``TMPDIR``)."""
        handle, path = tempfile.mkstemp(prefix="hybridscale-passages-", suffix=".arrow", dir=folder)
        os.close(handle)
        rows, starts = 0, []
        try:
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, _SCHEMA) as writer:
                items = iter(passages)
                while chunk := list(islice(items, BATCH_ROWS)):
                    starts.append(rows)
                    rows += len(chunk)
                    writer.write_batch(pa.record_batch(
                        [pa.array([getattr(p, name) for p in chunk], pa.string()) for name in _FIELDS], schema=_SCHEMA))
            return cls(path, rows, starts)
        except BaseException:
            if os.path.exists(path):
                os.unlink(path)
            raise

    def __len__(self) -> int:
        return self._rows

    @overload
    def __getitem__(self, index: int) -> Passage: ...

    @overload
    def __getitem__(self, index: slice) -> list[Passage]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self._rows)
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            found: list[Passage] = []
            while start < stop:
                batch = bisect.bisect_right(self._starts, start) - 1
                first = self._starts[batch]
                taken = self._batch(batch)[start - first : stop - first]
                found += taken
                start += len(taken)
            return found
        if index < 0:
            index += self._rows
        if not 0 <= index < self._rows:
            raise IndexError(f"passage {index} of {self._rows}")
        batch = bisect.bisect_right(self._starts, index) - 1
        return self._batch(batch)[index - self._starts[batch]]

    def __iter__(self) -> Iterator[Passage]:
        for batch in range(len(self._starts)):
            yield from self._batch(batch)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal to a tuple, so it cannot hash like one

    def __repr__(self) -> str:
        return f"StoredPassages({self._rows} passages)"

    def _batch(self, number: int) -> list[Passage]:
        """The passages of record batch ``number``; the last one read is kept, for reads in order."""
        with self._lock:
            if self._cached is None or self._cached[0] != number:
                columns = self._reader.get_batch(number).to_pydict()
                self._cached = (number, [Passage(i, text, language, title) for i, language, title, text
                                         in zip(*(columns[name] for name in _FIELDS))])
            return self._cached[1]


def stored(passages: Iterable[Passage]) -> Sequence[Passage]:
    """``passages`` as a :class:`StoredPassages` (as they are, when they already are one)."""
    return passages if isinstance(passages, StoredPassages) else StoredPassages.write(passages)


def _close_and_remove(file: pa.NativeFile, path: str) -> None:
    file.close()
    os.unlink(path)
