"""What a command would do, decided from the files on disk and the history alone: pure functions, no
connection. Each returns the migrations to run (or their states) and the warnings to show, or raises the
refusal the user sees (drift, a renamed folder, a file that cannot run, an unknown version)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from mercurio_migrate import history, layout
from mercurio_migrate.errors import DriftError, MercurioError, SqlError, UsageError
from mercurio_migrate.executor import Progress, StepResult, refusal
from mercurio_migrate.layout import Migration, MigrationSet, SqlFile
from mercurio_migrate.sqlscript import Script, parse
from mercurio_migrate.statementwise import describe_done

APPLIED, PENDING, DRIFTED, MISSING, PARTIAL = "applied", "pending", "drifted", "missing", "partial"


class MigrationState(NamedTuple):
    version: str
    name: str
    state: str
    applied_at: datetime | None
    execution_ms: float | None
    checksum: str
    purpose: str
    records_processed: int | None = None
    drifted_files: tuple[str, ...] = ()
    header: dict | None = None
    partial: str | None = None  # what an interrupted statement-by-statement run committed (see describe_partial)

    def as_dict(self) -> dict:
        data = self._asdict()
        data["header"] = dict(self.header or {})
        data["applied_at"] = self.applied_at.isoformat() if self.applied_at else None
        data["drifted_files"] = list(self.drifted_files)
        return data


class PlannedStep(NamedTuple):
    version: str
    name: str
    file: str
    mode: str
    statements: tuple[str, ...]

    def as_dict(self) -> dict:
        return self._asdict() | {"statements": list(self.statements)}


class RunResult(NamedTuple):
    direction: str  # up | down
    steps: tuple[StepResult, ...]
    plan: tuple[PlannedStep, ...]
    dry_run: bool
    validation: object | None = None  # validation.ValidationReport of the whole run
    validation_each: tuple = ()  # (version, ValidationReport) per migration with --validate-each
    schema_sql: str | None = None  # canonical DDL of the migrated database (up --dump)


History = dict[str, history.HistoryRow]


def compute_states(found: MigrationSet, applied: History, *, describe: bool = True,
                   progress: dict[str, list[Progress]] | None = None) -> list[MigrationState]:
    """Each migration's state. ``describe=False``: without purpose and header (read from every file's
    comments: status shows them; up and down only check the states). ``progress``: a pending migration that
    an interrupted run committed part of is ``partial``."""
    states: list[MigrationState] = []
    on_disk = found.by_version()
    progress = progress or {}
    for version in sorted(set(on_disk) | set(applied)):
        migration = on_disk.get(version)
        row = applied.get(version)
        if migration is None:
            states.append(MigrationState(version, row.name, MISSING, row.applied_at, row.execution_ms,
                                         row.checksum, "", row.records_processed, header={}))
            continue
        header = migration.header if describe else {}
        purpose = header.get("purpose", "") if describe else ""
        if row is None:
            ups = [p for p in progress.get(version, ()) if p.direction == "up"]
            states.append(MigrationState(version, migration.name, PARTIAL if ups else PENDING, None, None,
                                         migration.migration.checksum, purpose, header=header,
                                         partial=describe_partial(ups)))
            continue
        drifted = layout.drifted_files(migration, row.checksum, row.rollback_checksum)
        downs = [p for p in progress.get(version, ()) if p.direction == "down"]
        states.append(MigrationState(version, migration.name, DRIFTED if drifted else APPLIED, row.applied_at,
                                     row.execution_ms, migration.migration.checksum, purpose,
                                     row.records_processed, tuple(drifted), header,
                                     partial=describe_partial(downs, "rolled back")))
    return states


def describe_partial(progress: list[Progress], verb: str = "applied") -> str | None:
    """What an interrupted statement-by-statement run committed, in words (None: nothing is recorded)."""
    if not progress:
        return None
    return f"partly {verb}: {describe_done(progress)} (the next run resumes after what committed)"


def find_version(found: MigrationSet, applied: History, target: str) -> str:
    """The version ``target`` names (a version or a whole folder name), on disk or in the history."""
    on_disk = found.by_version()
    for version in set(on_disk) | set(applied):
        name = on_disk[version].name if version in on_disk else applied[version].name
        if target in (version, f"{version}_{name}"):
            return version
    raise UsageError(f"unknown migration version {target!r}",
                     hint="Use a version (YYYYMMDD_HHMMSS) or folder name that `mercurio-migrate status` lists.")


def pending(found: MigrationSet, applied: History, to: str | None) -> list[Migration]:
    """The migrations on disk not applied, up to ``to`` (a version or folder name) if given."""
    target = find_version(found, applied, to) if to else None
    return [m for m in found.migrations if m.version not in applied and (target is None or m.version <= target)]


def check_changes(found: MigrationSet, applied: History, allow_drift: bool) -> list[str]:
    """Refuse drifted files (unless ``allow_drift``) and renamed folders; the warnings to show."""
    states = compute_states(found, applied, describe=False)
    return _check_drift(states, allow_drift) + _check_renamed(found, states, applied)


def _check_drift(states: list[MigrationState], allow_drift: bool) -> list[str]:
    drifted = [f"{s.version}_{s.name} ({', '.join(s.drifted_files)})" for s in states if s.state == DRIFTED]
    if not drifted:
        return []
    if not allow_drift:
        raise DriftError(drifted)
    return ["continuing despite drift (--allow-drift): " + ", ".join(drifted)]


def _check_renamed(found: MigrationSet, states: list[MigrationState], applied: History) -> list[str]:
    """A pending folder whose migration.sql is the file of an applied migration that vanished from disk is
    almost surely that migration renamed: running it again would apply it twice."""
    warnings = []
    missing = [s for s in states if s.state == MISSING]
    for state in states:
        if state.state == MISSING:
            warnings.append(f"{state.version}_{state.name} is recorded as applied but its folder is not on disk")
        elif state.state == APPLIED and applied[state.version].name != state.name:
            warnings.append(f"{state.version}: applied as {applied[state.version].name!r}, the folder is now named "
                            f"{state.name!r}")
    on_disk = found.by_version()
    renamed = [(s, old) for s in states if s.state == PENDING for old in missing
               if layout.is_recorded(on_disk[s.version].migration, old.checksum)]
    if renamed:
        pairs = ", ".join(f"{new.version}_{new.name} (was {old.version}_{old.name})" for new, old in renamed)
        raise MercurioError(
            f"pending migration(s) identical to applied ones whose folders are gone: {pairs}; "
            "running them would apply the same change twice",
            hint="If the folder was renamed, record the new version with `resolve NEW_VERSION --applied` "
                 "and drop the old row with `resolve OLD_VERSION --rolled-back`.")
    return warnings


def out_of_order(chosen: list[Migration], applied: History) -> list[str]:
    newest_applied = max(applied) if applied else ""
    return [f"{m.id} is older than the newest applied migration ({newest_applied}): applying it out of order"
            for m in chosen if m.version < newest_applied]


def rollback_choice(found: MigrationSet, applied: History, *, count: int, to: str | None, all_: bool,
                    allow_drift: bool) -> tuple[list[Migration], list[str]]:
    """The migrations a `down` rolls back, newest first, and the warnings to show; refuses (nothing run)
    when one cannot be."""
    newest_first = sorted(applied, reverse=True)
    if all_:
        chosen = newest_first
    elif to:
        target = find_version(found, applied, to)
        chosen = [v for v in newest_first if v > target]
    else:
        chosen = newest_first[:count]
    states = {s.version: s for s in compute_states(found, applied, describe=False)}
    warnings = _check_drift([states[v] for v in chosen], allow_drift)
    on_disk = found.by_version()
    blocked = []
    for version in chosen:
        migration = on_disk.get(version)
        if migration is None:
            blocked.append(f"{version}_{applied[version].name}: its folder is missing from disk")
        elif migration.irreversible:
            blocked.append(f"{migration.id}: declared irreversible ({migration.irreversible})")
        elif migration.rollback is None:
            blocked.append(f"{migration.id}: has no rollback.sql")
    if blocked:
        raise MercurioError("cannot roll back; nothing was run:\n  " + "\n  ".join(blocked),
                            hint="Write the missing rollback.sql, or stop before that migration "
                                 "(down --to VERSION), or record it with `resolve VERSION --rolled-back`.")
    migrations = [on_disk[v] for v in chosen]
    for migration in migrations:
        if not _has_statements(migration.rollback):
            warnings.append(f"{migration.rollback.path} holds no statement: rolling {migration.id} back only removes "
                            "it from the history (declare `-- Irreversible: reason` if it cannot be undone)")
    return migrations, warnings


def _has_statements(file: SqlFile) -> bool:
    return bool(parse(file.text, file.path).statements)


def parse_files(files: list[tuple[Migration, SqlFile]], cache: dict[tuple[str, str], Script] | None = None
                ) -> list[Script]:
    """Every file parsed before anything runs; all syntax errors, and every file that cannot run as a
    migration, reported at once. ``cache``: (path, text) → Script, so that a file is parsed once per command."""
    cache = {} if cache is None else cache
    scripts: list[Script] = []
    errors: list[MercurioError] = []
    for _, sql_file in files:
        key = (sql_file.path, sql_file.text)
        try:
            script = cache.get(key) or parse(sql_file.text, sql_file.path)
        except SqlError as exc:
            errors.append(exc)
            continue
        cache[key] = script
        problem = _problem(script)
        if problem:
            errors.append(UsageError(problem))
        else:
            scripts.append(script)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        problem = MercurioError("files that cannot run; nothing was run:\n" + "\n".join(
            e.message + (f"\n    hint: {e.hint}" if e.hint else "") for e in errors),
            hint="Fix each file at the position named.")
        problem.exit_code = max(e.exit_code for e in errors)  # 2 when each must be rewritten
        raise problem
    return scripts


def _problem(script: Script) -> str | None:
    """Why a file that parses cannot run as a migration (None: it can). A rollback.sql may hold no statement
    (rolling back then only removes the migration from the history, as Diesel and golang-migrate do)."""
    if not script.statements and not script.path.endswith("rollback.sql"):
        return (f"{script.path}: holds no SQL statements (only comments?): write the migration's statements or "
                "delete the folder")
    for statement in script.statements:
        if statement.kind == "CopyStmt" and statement.fields.get("is_from") and not statement.fields.get("filename"):
            return (f"{script.location(statement.start, statement)}: COPY … FROM STDIN needs data from the "
                    "client, which a migration file cannot carry: use INSERT … VALUES, or COPY from a "
                    "server-side file")
    return refusal(script)


def plan_entry(migration: Migration, script: Script) -> PlannedStep:
    return PlannedStep(migration.version, migration.name, script.path, script.mode.value,
                       tuple(s.text for s in script.body))
