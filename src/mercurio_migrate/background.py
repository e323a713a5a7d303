"""One piece of work in a thread, started at once and joined when its result is needed.

The commands use it to connect (and read the history) while the main thread reads and hashes the migration
files: libpq waits for the server outside the interpreter's lock, so the two overlap. Join it before forking
(sqlscript.ParseAhead only forks a process with no other thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, work: Callable[[], T], *, name: str = "mercurio-background"):
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for the result
            self._error = error

    def result(self) -> T:
        """The work's value, or what it raised, raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value

    def discard(self, release: Callable[[T], None] | None = None) -> None:
        """Wait for the work and drop its outcome (the caller is failing for another reason); ``release``
        frees the value if there is one (a connection to close)."""
        self._thread.join()
        if self._error is None and self._value is not None and release is not None:
            release(self._value)
