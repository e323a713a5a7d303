"""Rendering of engine results: plain text for pipes and CI, rich on a terminal, JSON with --json."""

from __future__ import annotations

import json
import sys
from typing import Any

# control characters other than tab and newline, shown escaped on a terminal: a server message, a file name
# or a row of migration_log cannot move the cursor, recolour or retitle the user's terminal
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if code not in (0x09, 0x0A)}


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


# rich's cost grows with a table's rows until it outweighs the command (benchmarks/status.py times `status`
# of 1,000 on a terminal): longer tables are written as plain columns, as they are for pipes.
RICH_TABLE_ROWS = 50


def table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if is_terminal():
        cells = [[v.translate(_ESCAPED) for v in row] for row in cells]
        if len(cells) <= RICH_TABLE_ROWS:
            from rich.console import Console
            from rich.table import Table

            rich_table = Table(*headers, title=title)
            for row in cells:
                rich_table.add_row(*row)
            Console(markup=False, highlight=False).print(rich_table)
            return
    widths = [max(map(len, column)) for column in zip(headers, *cells)]
    lines = [title] if title else []
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in (headers, *cells))
    print("\n".join(lines))


_STYLES = {"warning": "yellow", "lock_wait": "magenta", "error": "bold red", "skip": "cyan", "done": "green"}
_PREFIXES = {"warning": "warning: ", "error": "error: ", "lock_wait": "waiting: "}


def message(text: str, kind: str = "info") -> None:
    """A progress line, warning or error: always on stderr so stdout stays parseable. On a terminal rich
    colours it (NO_COLOR and TERM=dumb honoured); elsewhere the line is written as it is, for logs."""
    line = _PREFIXES.get(kind, "") + text
    if not is_terminal(sys.stderr):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
        return
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(Text(line.translate(_ESCAPED), style=_STYLES.get(kind, "")))
