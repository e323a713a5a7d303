"""`mercurio-migrate lint`: static checks of migrations (lock safety, rollbacks and, with the mercurio profile,
Mercurio's guidelines), no database needed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mercurio_migrate.cli import Context, pass_context


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default=None,
              help="Output format (default text; json with the global --json).")
@click.option("--select", metavar="RULES", help="Comma-separated rule ids to run (or 'all'); default: the "
              "rules enabled by default and by pyproject.toml.")
@click.option("--ignore", metavar="RULES", help="Comma-separated rule ids not to run.")
@click.option("--list-rules", is_flag=True, help="List every rule with its default severity and exit.")
@pass_context
def lint(obj: Context, paths: tuple[Path, ...], fmt: str | None, select: str | None, ignore: str | None,
         list_rules: bool) -> None:
    """Lint migration folders or SQL files (default: the migrations directory).

    Exit status 1 when an error-level finding remains, 0 otherwise, 2 for bad usage.
    Suppress a finding with `-- mercurio-lint: ignore RULE_ID reason` above the statement.
    """
    from mercurio_migrate.lint import lint_paths, load_config

    settings = obj.settings()
    if list_rules:
        from mercurio_migrate.lint.rules import for_profile

        for rule in for_profile(settings.profile).values():
            print(f"{rule.id:40} {rule.severity:8} {rule.category:12} {rule.summary}")
        return
    config = load_config(settings.project, select=select, ignore=ignore, profile=settings.profile)
    result = lint_paths(list(paths) or [settings.migrations_dir], config)
    from mercurio_migrate.lint.report import render

    sys.stdout.write(render(result, fmt or ("json" if obj.as_json else "text")))
    sys.stdout.flush()
    if result.errors:
        sys.exit(1)
