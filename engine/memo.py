"""A bounded per-process memo: a worker repeats the same reads and tokenisations for every run of a study."""

from __future__ import annotations

from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")


def _one(_value: object) -> int:
    return 1


class KeptValues(Generic[Value]):
    """Values by key, their sizes (``size(value)``, 1 each by default) adding up to at most ``limit``; when a new
    value needs room, the values kept longest are dropped first. A value larger than ``limit`` is not kept.

    Only for values nobody changes: every caller gets the same object.
    """

    def __init__(self, limit: int, size: Callable[[Value], int] = _one) -> None:
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        self._limit = limit
        self._size = size
        self._values: dict[Hashable, tuple[Value, int]] = {}
        self._held = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __getitem__(self, key: Hashable) -> Value:
        return self._values[key][0]

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: Hashable, value: Value) -> Value:
        """Keep ``value`` under ``key`` (dropping the oldest while it needs room) and return it."""
        self._drop(key)
        size = self._size(value)
        if size > self._limit:
            return value
        while self._held + size > self._limit:
            self._drop(next(iter(self._values)))
        self._values[key] = (value, size)
        self._held += size
        return value

    def get(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value under ``key``, made by ``make()`` and kept the first time (a failing ``make`` keeps nothing)."""
        if key in self._values:
            return self._values[key][0]
        return self.put(key, make())

    def _drop(self, key: Hashable) -> None:
        dropped = self._values.pop(key, None)
        if dropped is not None:
            self._held -= dropped[1]
