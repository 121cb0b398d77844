"""A bounded per-process memo: a worker repeats the same reads and tokenisations for every run of a study."""

from __future__ import annotations

from typing import Callable, Generic, Hashable, TypeVar

Value = TypeVar("Value")


class KeptValues(Generic[Value]):
    """At most ``limit`` values by key; when full, the value kept longest is dropped first.

    Only for values nobody changes: every caller gets the same object.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit: must be at least 1, got {limit}")
        self._limit = limit
        self._values: dict[Hashable, Value] = {}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def __getitem__(self, key: Hashable) -> Value:
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def put(self, key: Hashable, value: Value) -> Value:
        """Keep ``value`` under ``key`` (dropping the oldest when full) and return it."""
        self._values.pop(key, None)
        while len(self._values) >= self._limit:
            self._values.pop(next(iter(self._values)))
        self._values[key] = value
        return value

    def get(self, key: Hashable, make: Callable[[], Value]) -> Value:
        """The value under ``key``, made by ``make()`` and kept the first time (a failing ``make`` keeps nothing)."""
        if key in self._values:
            return self._values[key]
        return self.put(key, make())
