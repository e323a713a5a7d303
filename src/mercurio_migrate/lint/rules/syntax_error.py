r"""The file does not parse as PostgreSQL SQL.

The linter uses PostgreSQL's own parser; a file it rejects would be rejected by the server too, and no
other rule can check it. Input written for psql is named as such: a meta-command (`\connect`, `\i`,
`\set`, pg_dump's `\restrict` …) or the data lines after `COPY … FROM stdin`, with what to write instead.

Fix: correct the SQL at the reported position.
"""

from __future__ import annotations

ID = "syntax-error"
SEVERITY = "error"
CATEGORY = "guideline"
SQUAWK = ()


def check(ctx):
    if ctx.file.syntax_error:
        from mercurio_migrate.sqlscript import psql_input

        message, offset = ctx.file.syntax_error
        psql = psql_input(ctx.file.text, offset)
        if psql is None:
            message, fix = f"syntax error: {message}", "Fix the SQL at this position."
        else:
            offset, message, fix = psql
        line, column = ctx.file.line_column(offset)
        finding = ctx.finding(None, message, fix, line=line)
        from dataclasses import replace

        yield replace(finding, column=column)
