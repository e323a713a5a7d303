"""`verify`, `drift` and `dump`: render the reports of mercurio_migrate.verify as text or JSON.

Exit codes: 0 everything checked out; 1 a difference, a failed migration or lost data; 2 bad usage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mercurio_migrate.cli import Context, pass_context

_MARKS = {"error": "error", "warning": "warning", "note": "note", "expected": "expected"}


def _finish(obj: Context, document: dict, lines: list[str], ok: bool) -> None:
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json(document)
    else:
        print("\n".join(lines))
    if not ok:
        sys.exit(1)


def _line(finding) -> str:
    return f"      {_MARKS[finding.severity]}: " + finding.message.replace("\n", "\n        ")


def _warnings(warnings: list[str]) -> None:
    from mercurio_migrate.output import message

    for warning in warnings:
        message(warning, "warning")


@click.command()
@click.option("--to", "to", metavar="VERSION", help="Verify migrations up to and including VERSION.")
@click.option("--from", "start", metavar="VERSION",
              help="Round-trip migrations from VERSION on; those before it are applied first, unchecked "
                   "(a long history: check what a branch adds).")
@click.option("--data", is_flag=True, help="Run each fixture.sql and check that rollbacks keep existing rows.")
@click.option("--strict", is_flag=True, help="A migration without rollback.sql is an error, not a warning.")
@click.option("--keep", is_flag=True, help="Keep the scratch database afterwards (its name is printed).")
@pass_context
def verify(obj: Context, to: str | None, start: str | None, data: bool, strict: bool, keep: bool) -> None:
    """Apply, roll back and re-apply every migration in a scratch database; compare schemas each time.

    The target database is never touched: a scratch database is created on the same server (or on
    the embedded one) and dropped afterwards.
    """
    report = obj.api.verify(obj.settings(), to=to, start=start, data=data, strict=strict, keep=keep)
    if not obj.as_json:
        _warnings(report.warnings)
    lines = [f"verify: {len(report.migrations)} migration(s) in scratch database {report.scratch_database}"
             + (" (with fixtures and data checks)" if data else "")]
    if report.base:
        lines.append(f"  applied first, unchecked (before --from): {len(report.base)} migration(s), "
                     f"{report.base[0]} … {report.base[-1]}" if len(report.base) > 1
                     else f"  applied first, unchecked (before --from): {report.base[0]}")
    width = max((len(m.id) for m in report.migrations), default=0)
    for check in report.migrations:
        lines.append(f"  {check.id.ljust(width)}  {check.status.upper() if check.status != 'ok' else 'OK'}")
        for finding in check.findings:
            lines.append(_line(finding))
    if report.migrations:
        if report.final:
            lines.append("  rolling everything back:")
            lines.extend(_line(f) for f in report.final)
        elif report.reached_start:
            lines.append("  rolling everything back: back to "
                         + ("the state before --from, OK" if report.base else "the empty start, OK"))
    errors = sum(f.severity == "error" for f in report.findings)
    warnings = sum(f.severity == "warning" for f in report.findings)
    summary = "verify: OK" if report.ok else f"verify: FAILED ({errors} error(s))"
    if warnings:
        summary += f", {warnings} warning(s)"
    lines.append(summary)
    if report.kept:
        lines.append(f"scratch database kept: {report.scratch_url}")
    _finish(obj, report.as_dict(), lines, report.ok)


@click.command()
@pass_context
def drift(obj: Context) -> None:
    """Compare the database's schema with the schema its applied migrations build (changes made by hand)."""
    report = obj.api.drift(obj.settings())
    if not obj.as_json:
        _warnings(report.warnings)
    lines = [f"drift: {report.target} against a scratch database with its {len(report.applied)} applied "
             "migration(s)"]
    if report.differences:
        lines.append("  differences (as the migrations build it -> as the database has it):")
        for d in report.differences:
            lines.append(f"      {'note' if d.severity == 'note' else d.status}: {d}")
    real = sum(d.severity == "difference" for d in report.differences)
    lines.append("drift: none" if report.ok else f"drift: {real} difference(s)")
    _finish(obj, report.as_dict(), lines, report.ok)


@click.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the DDL to FILE instead of stdout.")
@click.option("--to", "to", metavar="VERSION", help="The schema after migrations up to and including VERSION.")
@click.option("--live", is_flag=True, help="Dump the target database's schema instead of building it in a scratch "
                                           "database from the migrations.")
@pass_context
def dump(obj: Context, output: Path | None, to: str | None, live: bool) -> None:
    """Write the migrated schema as canonical DDL (deterministic order, for code review)."""
    if live and to:
        raise click.UsageError("--live dumps the database as it is; it cannot be combined with --to")
    sql, warnings = obj.api.dump(obj.settings(), to=to, live=live)
    if not obj.as_json:
        _warnings(warnings)
    if output is not None:
        output.write_text(sql, encoding="utf-8")
    if obj.as_json:
        from mercurio_migrate.output import emit_json

        emit_json({"output": str(output) if output else None, "sql": None if output else sql, "warnings": warnings})
    elif output is not None:
        print(f"wrote {output} ({sql.count(chr(10))} lines)")
    else:
        sys.stdout.write(sql)
