"""Latest request wins: the one rule for answers from the background that a newer request overtook.

Qt-free, so the app model (which is) uses it as the pages do.
"""

from __future__ import annotations

from typing import Callable, TypeVar

Answer = TypeVar("Answer")


class Latest:
    """Latest request wins: an answer is delivered only if no newer request (or :meth:`drop`) came after it.

    A view asks again whenever its choices change, and answers come back in
    submission order, so without this an older answer would overwrite the
    screen for choices no longer shown. :meth:`request` starts a request and
    gives a wrapper for its callbacks.
    """

    def __init__(self) -> None:
        self._count = 0

    def request(self) -> Callable[[Callable[[Answer], None]], Callable[[Answer], None]]:
        """Start a request: callbacks wrapped by the returned function run only while it is the latest."""
        self._count += 1
        return self.current()

    def current(self) -> Callable[[Callable[[Answer], None]], Callable[[Answer], None]]:
        """A wrapper for callbacks that belong to the request in force now, without starting another.

        Several reads can share it (all of them are delivered) until the next
        :meth:`request` or :meth:`drop`.
        """
        mine = self._count

        def if_latest(callback: Callable[[Answer], None]) -> Callable[[Answer], None]:
            def deliver(answer: Answer) -> None:
                if mine == self._count:
                    callback(answer)
            return deliver

        return if_latest

    def drop(self) -> None:
        """Answers still on their way are for something no longer shown: deliver none of them."""
        self._count += 1
