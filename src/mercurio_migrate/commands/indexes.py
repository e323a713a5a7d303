"""``explain`` and ``indexes``: index usage, on a scratch database built from the migrations and on the live one."""

from __future__ import annotations

import sys

import click

from mercurio_migrate.cli import Context, pass_context
from mercurio_migrate.errors import UsageError


# --- explain ----------------------------------------------------------------------------------------------
def _render_explain(report) -> list[str]:
    lines = [f"explain: {len(report.checks)} quer(ies) from plans.sql in scratch database {report.scratch_database} "
             f"({sum(report.volume.values())} generated rows in {len(report.volume)} tables)"]
    for check in report.checks:
        status = "OK  " if check.ok else "FAIL"
        timing = f"{check.execution_ms:.2f} ms" if check.execution_ms is not None else "-"
        buffers = (f"buffers hit={check.buffers.get('shared_hit', 0)} read={check.buffers.get('shared_read', 0)}"
                   if check.buffers else "")
        used = ", ".join(check.used) or "no index"
        lines.append(f"  {status} {check.query.where}  expects {', '.join(check.query.expected)}  uses {used}  "
                     f"{timing} {buffers}".rstrip())
        if not check.ok:
            lines.append(f"       {check.reason}")
    if report.ok:
        lines.append("explain: OK")
    else:
        failed = ", ".join(f"{c.query.where} ({', '.join(c.query.expected)})" for c in report.failures)
        lines.append(f"explain: FAILED ({len(report.failures)} of {len(report.checks)}): {failed}")
    if report.kept:
        lines.append(f"scratch database kept: {report.scratch_url}")
    return lines


@click.command()
@click.option("--to", "to", metavar="VERSION", help="Migrate the scratch database up to VERSION (default: all).")
@click.option("--rows", default=None, type=click.IntRange(min=100), metavar="N",
              help="Generated rows per large table (default 20000; tenant-like tables get N/20, N/10).")
@click.option("--keep", is_flag=True, help="Keep the scratch database afterwards (its URL is printed).")
@pass_context
def explain(obj: Context, to: str | None, rows: int | None, keep: bool) -> None:
    """Check that every query in plans.sql uses the index it names, on generated volume in a scratch database.

    The target database is never touched. Exit 1 when a query's plan does not use its index.
    """
    from mercurio_migrate.explain import DEFAULT_ROWS
    from mercurio_migrate.explain import explain as run_explain
    from mercurio_migrate.output import message

    report = run_explain(obj.engine(), to=to, rows=rows or DEFAULT_ROWS, keep=keep)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json(report.as_dict())
    else:
        for warning in report.warnings:
            message(warning, "warning")
        print("\n".join(_render_explain(report)))
    if not report.checks and not obj.as_json:
        message("no plans.sql queries found: nothing was checked", "warning")
    if not report.ok:
        sys.exit(1)


# --- indexes ----------------------------------------------------------------------------------------------
def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.command()
@click.option("--schema", metavar="NAME", help="Only this schema (default: every user schema).")
@click.option("--fail-on", metavar="KINDS", default="",
              help="Exit 1 when any index has one of these findings: invalid,duplicate,unused,redundant.")
@pass_context
def indexes(obj: Context, schema: str | None, fail_on: str) -> None:
    """Index usage from pg_stat_user_indexes (scans, tuples read/fetched, size), with unused, duplicate,
    redundant and INVALID indexes. Read-only."""
    from mercurio_migrate.database import connect
    from mercurio_migrate.index_report import FINDINGS, index_report
    from mercurio_migrate.redact import redact_url

    kinds = {k.strip() for k in fail_on.split(",") if k.strip()}
    unknown = kinds - set(FINDINGS)
    if unknown:
        raise UsageError(f"--fail-on: unknown finding(s) {', '.join(sorted(unknown))}",
                         hint=f"Use a comma-separated list of {', '.join(FINDINGS)}.")
    engine = obj.engine()
    url = engine.database_url()
    with connect(url) as conn:
        report = index_report(conn, redact_url(url), schema)
    failed = report.failed(kinds)
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json(report.as_dict() | {"fail_on": sorted(kinds), "ok": not failed})
    else:
        from mercurio_migrate.output import table

        print(f"indexes of {report.database} (statistics since {report.stats_reset or 'the server started'})")
        if report.indexes:
            table(["table", "index", "scans", "tuples read", "tuples fetched", "size", "findings"],
                  [[i.table if i.schema == "public" else f"{i.schema}.{i.table}", i.name, i.scans, i.tuples_read,
                    i.tuples_fetched, _size(i.size_bytes), ", ".join(i.findings)] for i in report.indexes])
        for index in report.indexes:
            for note in index.notes:
                print(f"  {index.qualified}: {note}")
        counts = report.counts()
        print("indexes: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" of {len(report.indexes)}")
    if failed:
        sys.exit(1)
