"""Rendering of engine results: plain text for pipes and CI, rich on a terminal, JSON with --json."""

from __future__ import annotations

import json
import sys
from typing import Any


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        rich_table = Table(title=title, show_lines=False)
        for header in headers:
            rich_table.add_column(header)
        for row in cells:
            rich_table.add_row(*row)
        Console().print(rich_table)
        return
    # one write for the whole table: status prints a row per migration, a thousand of them
    columns = list(zip(*cells)) if cells else [()] * len(headers)
    widths = [max([len(h), *map(len, column)]) for h, column in zip(headers, columns)]
    lines = [title] if title else []
    lines.append("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    lines.extend("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)
    sys.stdout.write("\n".join(lines) + "\n")


_STYLES = {"warning": "yellow", "lock_wait": "magenta", "error": "bold red", "skip": "cyan", "done": "green"}


def message(text: str, kind: str = "info") -> None:
    """A progress line, warning or error: always on stderr so stdout stays parseable."""
    prefix = {"warning": "warning: ", "error": "error: ", "lock_wait": "waiting: "}.get(kind, "")
    if is_terminal(sys.stderr):
        from rich.console import Console
        from rich.markup import escape

        style = _STYLES.get(kind)
        body = escape(prefix + text)
        Console(stderr=True, highlight=False).print(f"[{style}]{body}[/{style}]" if style else body)
    else:
        sys.stderr.write(prefix + text + "\n")
        sys.stderr.flush()
