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


# rich draws a table on a terminal at about 1.2 ms a row (measured ad hoc: 1.25 s for `status` of 1,000
# migrations, against 0.15 s for the command's own work): longer tables are written as plain columns, as
# they are for pipes
RICH_TABLE_ROWS = 50


def table(headers: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if len(cells) <= RICH_TABLE_ROWS and is_terminal():
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
_PREFIXES = {"warning": "warning: ", "error": "error: ", "lock_wait": "waiting: "}
# control characters other than tab and newline, shown escaped on a terminal: a server message or a file
# name cannot move the cursor, recolour or retitle the user's terminal
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0)) if code not in (0x09, 0x0A)}
_console = None
_codes: dict[str, tuple[str, str]] = {}


def message(text: str, kind: str = "info") -> None:
    """A progress line, warning or error: always on stderr so stdout stays parseable.

    On a terminal the line is coloured as rich would colour it (NO_COLOR and TERM=dumb honoured), but
    written directly: a run prints a line per migration, and rich's print cost about 0.3 ms a line (ad hoc)."""
    line = _PREFIXES.get(kind, "") + text
    if is_terminal(sys.stderr):
        style = _STYLES.get(kind)
        start, end = _style_codes(style)
        if start is None:  # a legacy Windows console: only rich can colour it
            from rich.markup import escape

            _stderr_console().print(f"[{style}]{escape(line)}[/{style}]" if style else escape(line))
            return
        line = f"{start}{line.translate(_ESCAPED)}{end}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _stderr_console():
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False)
    return _console


def _style_codes(style: str | None) -> tuple[str | None, str]:
    """The escape codes that start and end ``style`` on stderr's terminal, computed once by rich: ('', '')
    without a style or colours, (None, '') when rich must do the printing."""
    if not style:
        return "", ""
    codes = _codes.get(style)
    if codes is None:
        console = _stderr_console()
        if console.legacy_windows:
            codes = (None, "")
        elif console.color_system is None:
            codes = ("", "")
        else:
            from rich.console import COLOR_SYSTEMS
            from rich.style import Style

            parsed = Style.parse(style)
            if console.no_color:
                parsed = parsed.without_color
            start, _, end = parsed.render("\x00", color_system=COLOR_SYSTEMS[console.color_system]).partition("\x00")
            codes = (start, end)
        _codes[style] = codes
    return codes
