"""An identifier longer than 63 bytes (PostgreSQL silently truncates it).

PostgreSQL truncates identifiers to 63 bytes without an error. The object is created under a shorter name
than the file says: the rollback's `DROP … IF EXISTS long_name` matches nothing, two long names that share
their first 63 bytes collide, and searching the schema for the written name fails. The parser itself
truncates, so the rule reads the lexer's tokens.

Fix: choose a name of at most 63 bytes.
"""

from __future__ import annotations

ID = "identifier-too-long"
SEVERITY = "error"
CATEGORY = "style"
SQUAWK = ("identifier-too-long",)
LIMIT = 63


def check(ctx):
    text = ctx.file.text
    if max(map(len, text.split()), default=0) <= LIMIT:
        return  # no whitespace-free run is long enough to hold such an identifier
    from pglast.parser import scan

    for token in scan(text):
        if token.name != "IDENT":
            continue
        size = token.end - token.start + 1  # byte offsets, end inclusive
        start = ctx.file.char_offset(token.start)
        if text[start] == '"':
            size -= 2
        if size <= LIMIT:
            continue
        statement = next((s for s in ctx.file.statements if s.start <= start <= s.end), None)
        line, column = ctx.file.line_column(start)
        finding = ctx.finding(statement, f"identifier of {size} bytes: PostgreSQL truncates it to {LIMIT}",
                              "Use a name of at most 63 bytes.", line=line)
        from dataclasses import replace

        yield replace(finding, line=line, column=column)
