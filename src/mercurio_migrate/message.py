"""One simple-query message built from whole statements, and where each of its results came from.

The tool never appends its own SQL to a file's raw text: every statement (a file's, as the parser bounded
it, or the tool's) is added whole and followed by ``;`` on a line of its own, so no trailing comment can
swallow what follows. Each added statement gives exactly one result, so a result's index names the
statement it belongs to, and an error position the server reports maps back into the statement's file.
"""

from __future__ import annotations

from typing import NamedTuple

from mercurio_migrate.sqlscript import Statement


class Entry(NamedTuple):
    offset: int  # where the statement starts in the message (characters)
    statement: Statement | None  # the file's statement, or None for the tool's own SQL
    tag: object = None  # what the caller wants to know of it (e.g. which migration of a batch)


class Message:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.entries: list[Entry] = []

    def add(self, sql: str, statement: Statement | None = None, tag: object = None) -> int:
        """Add one statement; returns the index of its result."""
        self.entries.append(Entry(self._length, statement, tag))
        piece = f"{sql}\n;\n" if statement is not None else f"{sql};\n"
        self._parts.append(piece)
        self._length += len(piece)
        return len(self.entries) - 1

    def add_file_statements(self, statements: tuple[Statement, ...] | list[Statement], tag: object = None) -> None:
        for statement in statements:
            self.add(statement.text, statement, tag)

    @property
    def sql(self) -> str:
        return "".join(self._parts)

    @property
    def pieces(self) -> list[str]:
        """Each statement as added, with its ';' (the message is their concatenation)."""
        return list(self._parts)

    def __len__(self) -> int:
        return len(self.entries)

    def failed_entry(self, results: list, error) -> tuple[int, int]:
        """(index of the entry that failed, 0-based offset of the error within it). The entry is the one
        after the last result; but when the server reports a position, the position decides: a message the
        server refuses as a whole (a syntax it does not know) fails before any statement ran."""
        index = max(0, len(results) - 1)
        position = int(error.diag.statement_position or 0)
        if position:
            offsets = [entry.offset for entry in self.entries]
            import bisect

            index = max(0, bisect.bisect_right(offsets, position - 1) - 1)
        return index, self.offset_in_statement(index, position)

    def offset_in_statement(self, index: int, position: str | int | None) -> int:
        """The 0-based offset within entry ``index``'s statement of the server's 1-based error ``position``
        (counted in characters from the start of the message); 0 when there is none."""
        if not position:
            return 0
        entry = self.entries[index]
        return max(0, int(position) - 1 - entry.offset)
