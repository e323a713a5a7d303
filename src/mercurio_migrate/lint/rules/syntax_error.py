"""The file does not parse as PostgreSQL SQL.

The linter uses PostgreSQL's own parser; a file it rejects would be rejected by the server too, and no
other rule can check it.

Fix: correct the SQL at the reported position.
"""

from __future__ import annotations

ID = "syntax-error"
SEVERITY = "error"
CATEGORY = "guideline"
SQUAWK = ()


def check(ctx):
    if ctx.file.syntax_error:
        message, offset = ctx.file.syntax_error
        line, _ = ctx.file.line_column(offset)
        finding = ctx.finding(None, f"syntax error: {message}", "Fix the SQL at this position.", line=line)
        from dataclasses import replace

        yield replace(finding, column=ctx.file.line_column(offset)[1])
