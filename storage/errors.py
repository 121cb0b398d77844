"""The one error type of the storage room: a database that cannot be opened, read or written.

Its message is one line that names the database (a password never appears)
and says what to do, so the command line, the worker and the GUI can show it
as it is. It is an ``OSError``: like a file, a database is something outside
the program that can be missing, full, read-only or unreachable.
"""

from __future__ import annotations


class StorageError(OSError):
    """A database that cannot be opened, read or written; the message says which and what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "database error"


class DatabaseMissing(StorageError):
    """A read-only open found no hybridscale database there (and created nothing)."""
