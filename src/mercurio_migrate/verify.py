"""Round-trip verification on a scratch database (drift and dump: drift.py). Returns reports; prints nothing.

The scratch database (mercurio_migrate.scratch) is created on the target's server (or the embedded one) as
``mercurio_verify_<random>`` and dropped afterwards, so the target itself is never written to and two
runs cannot see each other. For every migration: S0 -> apply -> S1 -> roll back -> must equal S0 ->
apply again -> must equal S1; at the end everything is rolled back and compared with the start. With
``start`` (`verify --from`), the migrations before it are applied first, in batches and unchecked, and the
round trips and the final rollback begin from the state they build.

With ``data=True`` each migration's ``fixture.sql`` runs after it, and every row that existed before
the rollback of a table that exists before and after must survive it (over the columns present both
times). Rows are stashed, cast to text, in a schema of the scratch database that snapshots leave out;
the round trip then runs on a copy of the scratch database, so the rows of tables a rollback drops
stay in place for the fixtures of later migrations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mercurio_migrate import snapshot
from mercurio_migrate.database import quote_text
from mercurio_migrate.engine import Engine, run_or_raise, run_unrecorded
from mercurio_migrate.errors import MigrationFailed, UsageError
from mercurio_migrate.layout import Migration, SqlFile, discover
from mercurio_migrate.redact import redact_url
from mercurio_migrate.scratch import Scratch
from mercurio_migrate.scratch_runs import (
    STASH_SCHEMA,
    Clock,
    Runner,
    leftovers,
    position,
    scratch_database,
    select,
    take,
)
from mercurio_migrate.snapshot import Difference, Snapshot
from mercurio_migrate.sqlscript import parse

ERROR, WARNING, NOTE, EXPECTED = "error", "warning", "note", "expected"


@dataclass(frozen=True)
class VerifyFinding:
    severity: str  # error | warning | note | expected (a loss the rollback's -- WARNING: line declares)
    phase: str  # apply | fixture | rollback | data | reapply | reversible | final
    message: str
    migration: str | None = None
    difference: Difference | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        data = {"severity": self.severity, "phase": self.phase, "message": self.message, "migration": self.migration}
        if self.difference is not None:
            data["difference"] = self.difference.as_dict()
        if self.details:
            data["details"] = self.details
        return data


@dataclass
class MigrationCheck:
    id: str
    version: str
    name: str
    reversible: bool
    findings: list[VerifyFinding] = field(default_factory=list)
    checked: bool = False  # the round trip ran to the end

    @property
    def status(self) -> str:
        if any(f.severity == ERROR for f in self.findings):
            return "failed"
        if not self.checked:
            return "not checked"
        return "ok" if self.reversible else "not reversible"

    def as_dict(self) -> dict:
        return {"id": self.id, "version": self.version, "name": self.name, "status": self.status,
                "reversible": self.reversible, "findings": [f.as_dict() for f in self.findings]}


@dataclass
class VerifyReport:
    migrations: list[MigrationCheck]
    final: list[VerifyFinding]
    reached_start: bool  # the final rollback went back to the start (empty, or the base) and was compared with it
    data: bool
    strict: bool
    scratch_database: str
    scratch_url: str  # redacted
    kept: bool
    warnings: list[str] = field(default_factory=list)
    base: list[str] = field(default_factory=list)  # ids applied before the first round trip (--from), unchecked
    rebuilt_after: list[str] = field(default_factory=list)  # ids whose failed round trip made verify rebuild
    # where the time went, ms: "total" (from the call to the report), "scratch database" (waiting for
    # CREATE DATABASE, connecting, dropping), "migrations" (applies and rollbacks), "snapshots", "data checks"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def findings(self) -> list[VerifyFinding]:
        return [f for m in self.migrations for f in m.findings] + self.final

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "data": self.data,
            "strict": self.strict,
            "base": self.base,
            "rebuilt_after": self.rebuilt_after,
            "migrations": [m.as_dict() for m in self.migrations],
            "final": {"reached_start": self.reached_start, "findings": [f.as_dict() for f in self.final]},
            "errors": sum(f.severity == ERROR for f in self.findings),
            "warnings": [*self.warnings, *(f.message for f in self.findings if f.severity == WARNING)],
            "scratch_database": {"name": self.scratch_database, "kept": self.kept,
                                 "url": self.scratch_url if self.kept else None},
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }


def _split(migrations: tuple[Migration, ...], selected: list[Migration], start: str | None
           ) -> tuple[list[Migration], list[Migration]]:
    """(the base: applied unchecked, the migrations to round-trip) for ``start`` (--from), None: no base."""
    if start is None:
        return [], selected
    index = position(migrations, start, "--from")
    if index >= len(selected):
        raise UsageError(f"--from {start} comes after --to {selected[-1].id}: nothing would be verified",
                         hint="Give --from a version at or before --to.")
    return selected[:index], selected[index:]


# --- verify -----------------------------------------------------------------------------------------
def verify(engine: Engine, *, to: str | None = None, start: str | None = None, data: bool = False,
           strict: bool = False, keep: bool = False) -> VerifyReport:
    """``start`` (--from): the first migration to round-trip; those before it are applied first, unchecked (with
    their fixtures under ``data``). The scratch database is dropped at the end whatever happens (kept with
    ``keep``)."""
    started, timings = time.perf_counter(), {}
    clock = Clock(timings)
    scratch_context = scratch_database(engine, keep=keep)
    with scratch_context as scratch:
        found = discover(engine.settings.migrations_dir)
        migrations = select(found.migrations, to)
        base, checked = _split(found.migrations, migrations, start)
        runner = Runner(engine, scratch, clock)
        up, down = runner.parse(migrations)
        report = VerifyReport([], [], False, data, strict, scratch.name, redact_url(scratch.url()), keep,
                              [str(w) for w in found.warnings] + leftovers(scratch), base=[m.id for m in base],
                              timings=timings)
        _Verification(runner, scratch, report, up, down, clock).run(base, checked)
        report.warnings.extend(runner.warnings)
        closing = time.perf_counter()
    timings["scratch database"] = timings.get("scratch database", 0.0) + (time.perf_counter() - closing) * 1000
    timings["total"] = (time.perf_counter() - started) * 1000
    return report


class _Verification:
    def __init__(self, runner: Runner, scratch: Scratch, report: VerifyReport, up: dict, down: dict,
                 clock: Clock):
        self.runner, self.scratch, self.report, self.clock = runner, scratch, report, clock
        self.up, self.down = up, down
        self.conn = None
        self.before: dict[str, Snapshot] = {}  # S0 of each migration, for the final rollback

    def _connect(self) -> None:
        with self.clock("scratch database"):
            self.conn = self.scratch.session()

    def _disconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def take(self, conn=None) -> Snapshot:
        with self.clock("snapshots"):
            return take(conn or self.conn, self.runner.engine)

    def run(self, base: list[Migration], migrations: list[Migration]) -> None:
        self._connect()
        try:
            self.runner.engine.ensure_tables(self.conn)
            if self.report.data:
                self.conn.execute(f"CREATE SCHEMA {STASH_SCHEMA}")
            if base and not self._build_base(base):
                return
            state = self.take()
            applied: list[Migration] = []  # round-tripped since the last rebuild: the final rollback's path
            for index, migration in enumerate(migrations):
                check = MigrationCheck(migration.id, migration.version, migration.name,
                                       migration.rollback is not None and not migration.irreversible)
                self.report.migrations.append(check)
                self.before[migration.version] = state
                state = self._check(migration, check, state)
                if state is not None:
                    applied.append(migration)
                    continue
                if not any(f.phase in ("rollback", "reapply") for f in check.findings):
                    self._not_checked(migrations[index + 1:], migration)  # it did not apply: nothing after can
                    break
                # its rollback or re-apply failed: the scratch database is rebuilt up to it, and verify goes on
                state = self._rebuild(base + migrations[:index + 1], check)
                if state is None:
                    self._not_checked(migrations[index + 1:], migration)
                    break
                self.report.rebuilt_after.append(migration.id)
                applied = []
            self._final(applied)
        finally:
            self._disconnect()

    def _not_checked(self, rest: list[Migration], stopped_at: Migration) -> None:
        for migration in rest:
            check = MigrationCheck(migration.id, migration.version, migration.name,
                                   migration.rollback is not None and not migration.irreversible)
            check.findings.append(VerifyFinding(WARNING, "apply", f"{migration.id} was not checked: verify stopped at "
                                                f"{stopped_at.id}", migration.id))
            self.report.migrations.append(check)

    def _rebuild(self, migrations: list[Migration], check: MigrationCheck) -> Snapshot | None:
        """A new scratch database with ``migrations`` applied (their fixtures too under --data), after a
        round trip left the old one in an unknown state; its snapshot, or None when it could not be built."""
        self._disconnect()
        with self.clock("scratch database"):
            self.scratch.drop(self.scratch.name)
            self.scratch.create()
        self._connect()
        self.runner.engine.ensure_tables(self.conn)
        if self.report.data:
            self.conn.execute(f"CREATE SCHEMA {STASH_SCHEMA}")
        failed = self._apply_unchecked(migrations)
        if failed is not None:
            migration, what = failed
            check.findings.append(VerifyFinding(ERROR, "rebuild", f"rebuilding the scratch database after "
                                                f"{check.id} failed: {migration.id} {what}", check.id))
            return None
        return self.take()

    def _apply_unchecked(self, migrations: list[Migration]) -> tuple[Migration, str] | None:
        """Apply ``migrations`` without checking them: in batches (as `up` does), or one at a time, each followed
        by its fixture, under --data. (the migration that failed, how) or None."""
        if not self.report.data:
            try:
                with self.clock("migrations"):
                    self.runner.engine.run_steps(self.conn, [(m, self.up[m.version]) for m in migrations], "up")
            except MigrationFailed as failure:
                return next(m for m in migrations if m.version == failure.version), \
                    f"failed to apply: {failure.message}"
            return None
        for migration in migrations:
            failure = self.runner.run(self.conn, migration, self.up[migration.version], "up")
            if failure:
                return migration, f"failed to apply: {failure.message}"
            fixture = migration.extras.get("fixture.sql")
            error = run_fixture(self.conn, fixture) if fixture else None
            if error:
                return migration, f"fixture.sql failed: {error}"
        return None

    def _build_base(self, base: list[Migration]) -> bool:
        """Apply the migrations before --from, unchecked. False (with the failure as a finding) when one fails."""
        failed = self._apply_unchecked(base)
        if failed is None:
            return True
        migration, what = failed
        self._base_failed(migration, "fixture" if what.startswith("fixture") else "apply", what)
        return False

    def _base_failed(self, migration: Migration, phase: str, what: str) -> None:
        check = MigrationCheck(migration.id, migration.version, migration.name,
                                       migration.rollback is not None and not migration.irreversible)
        check.findings.append(VerifyFinding(ERROR, phase, f"{migration.id} (before --from, applied unchecked) {what}",
                                      migration.id))
        self.report.migrations.append(check)

    # one migration ------------------------------------------------------------------------------------
    def _check(self, migration: Migration, check: MigrationCheck, s0: Snapshot) -> Snapshot | None:
        """Apply, and round-trip when reversible; the snapshot to continue from, or None to stop."""
        data = self.report.data
        if data:
            self._stash("p0", s0)
        failure = self.runner.run(self.conn, migration, self.up[migration.version], "up")
        if failure:
            check.findings.append(VerifyFinding(ERROR, "apply", f"{migration.id} failed to apply: {failure.message}",
                                          migration.id))
            return None
        s1 = self.take()
        fixture = migration.extras.get("fixture.sql") if data else None
        if migration.rollback is None or migration.irreversible:
            severity = ERROR if self.report.strict else WARNING
            why = f"declared irreversible ({migration.irreversible})" if migration.irreversible else \
                "it has no rollback.sql"
            check.findings.append(VerifyFinding(severity, "reversible", f"{migration.id} is not reversible: {why}",
                                                migration.id))
            if fixture and not self._fixture(migration, check, fixture):
                return None
            check.checked = True
            self._clear_stash()
            return s1
        if fixture:
            self._stash("pm", s1)
            if not self._fixture(migration, check, fixture):
                return None
            self._stash("p1", s1)
        if data:
            result = self._round_trip_on_copy(migration, check, s0, s1, has_fixture=bool(fixture))
            self._clear_stash()
            return s1 if result else None
        return self._round_trip(self.conn, migration, check, s0, s1, has_fixture=False)

    def _round_trip_on_copy(self, migration, check, s0, s1, *, has_fixture: bool) -> Snapshot | None:
        # CREATE DATABASE … TEMPLATE needs the template to have no sessions.
        self._disconnect()
        copy = f"{self.scratch.name}_rt"
        try:
            with self.clock("scratch database"):
                self.scratch.create(copy, template=self.scratch.name)
                conn = self.scratch.session(copy)
            try:
                return self._round_trip(conn, migration, check, s0, s1, has_fixture=has_fixture)
            finally:
                conn.close()
        finally:
            with self.clock("scratch database"):
                self.scratch.drop(copy)
            self._connect()

    def _round_trip(self, conn, migration, check, s0, s1, *, has_fixture: bool) -> Snapshot | None:
        failure = self.runner.run(conn, migration, self.down[migration.version], "down")
        if failure:
            check.findings.append(VerifyFinding(ERROR, "rollback", f"rollback of {migration.id} failed: {failure.message}",
                                          migration.id))
            return None
        rolled_back = self.take(conn)
        check.findings.extend(_rollback_findings(migration, s0, rolled_back, "rollback"))
        if self.report.data:
            with self.clock("data checks"):
                check.findings.extend(_data_findings(conn, migration, s0, s1, rolled_back, has_fixture))
        failure = self.runner.run(conn, migration, self.up[migration.version], "up")
        if failure:
            check.findings.append(VerifyFinding(ERROR, "reapply", f"re-applying {migration.id} after its rollback failed: "
                                          f"{failure.message}", migration.id))
            return None
        reapplied = self.take(conn)
        check.findings.extend(_reapply_findings(migration, s1, reapplied))
        check.checked = True
        return reapplied

    def _fixture(self, migration: Migration, check: MigrationCheck, fixture: SqlFile) -> bool:
        error = run_fixture(self.conn, fixture)
        if error:
            check.findings.append(VerifyFinding(ERROR, "fixture", f"fixture.sql of {migration.id} failed: {error}",
                                          migration.id))
        return error is None

    # row stashes --------------------------------------------------------------------------------------
    def _stash(self, tag: str, snap: Snapshot) -> None:
        statements = []
        for index, table in enumerate(_data_tables(snap)):
            columns = table.get("column order") or ()
            select = ", ".join(f"{c}::text AS {c}" for c in columns)
            statements.append(f"CREATE TABLE {STASH_SCHEMA}.{tag}_{index} AS SELECT {select} FROM {table.sql_name}")
        if statements:
            run_or_raise(self.conn, "BEGIN;\n" + ";\n".join(statements) + ";\nCOMMIT", "stashing rows for --data")

    def _clear_stash(self) -> None:
        if self.report.data:
            run_or_raise(self.conn, f"DROP SCHEMA {STASH_SCHEMA} CASCADE; CREATE SCHEMA {STASH_SCHEMA}",
                           "clearing the row stash")

    # the final rollback ---------------------------------------------------------------------------------
    def _final(self, applied: list[Migration]) -> None:
        # A leftover reported once (by a round trip, or by a later rollback here) is carried down to
        # the start: it is not attributed again to every older migration.
        reported = {_identity(f.difference) for f in self.report.findings if f.difference is not None}
        if self.report.rebuilt_after:
            last = self.report.rebuilt_after[-1]
            self.report.final.append(VerifyFinding(
                NOTE, "final", f"the final rollback stops after {last}: its own rollback failed above, so the "
                f"return to {'the state before --from' if self.report.base else 'the empty start'} was not checked",
                last))
        for migration in reversed(applied):
            if migration.rollback is None or migration.irreversible:
                why = "declared irreversible" if migration.irreversible else "no rollback.sql"
                self.report.final.append(VerifyFinding(
                    WARNING, "final", f"the final rollback stops at {migration.id} ({why}): the return to "
                    f"{'the state before --from' if self.report.base else 'the empty start'} was not checked",
                    migration.id))
                return
            failure = self.runner.run(self.conn, migration, self.down[migration.version], "down")
            if failure:
                self.report.final.append(VerifyFinding(ERROR, "final", f"rolling back {migration.id} (rolling everything "
                                                 f"back) failed: {failure.message}", migration.id))
                return
            rolled_back = self.take()
            for finding in _rollback_findings(migration, self.before[migration.version], rolled_back, "final"):
                if _identity(finding.difference) not in reported:
                    self.report.final.append(finding)
                    reported.add(_identity(finding.difference))
        self.report.reached_start = len(applied) == len(self.report.migrations)


def _identity(d: Difference) -> tuple:
    return (d.key, d.status, d.attr, repr(d.after))


def run_fixture(conn, fixture: SqlFile) -> str | None:
    """Run a fixture.sql (nothing recorded); the error text, or None."""
    error = run_unrecorded(conn, parse(fixture.text, fixture.path))
    return error.message if error else None


# --- findings -----------------------------------------------------------------------------------------
def _rollback_findings(migration: Migration, before: Snapshot, after: Snapshot, phase: str) -> list[VerifyFinding]:
    how = f"rollback of {migration.id}" + (" (rolling everything back)" if phase == "final" else "")
    out = []
    for d in snapshot.diff(before, after):
        if d.severity == "note":
            text = f"{d.kind} {d.name}: {d.change} after {how} ({d.reason or 'PostgreSQL cannot restore column order'})"
            out.append(VerifyFinding(NOTE, phase, text, migration.id, d))
            continue
        if d.status == "added":
            text = f"{d.kind} {d.name} left behind by {how}"
        elif d.status == "removed":
            text = f"{d.kind} {d.name} missing after {how} (it existed before the migration)"
        else:
            text = f"{d.kind} {d.name} not restored by {how}: {d.change}" + (f"\n{d.diff}" if d.diff else "")
        out.append(VerifyFinding(ERROR, phase, text, migration.id, d))
    return out


def _reapply_findings(migration: Migration, first: Snapshot, again: Snapshot) -> list[VerifyFinding]:
    when = f"when {migration.id} is re-applied after its rollback"
    out = []
    for d in snapshot.diff(first, again):
        if d.severity == "note":
            out.append(VerifyFinding(NOTE, "reapply", f"{d.kind} {d.name}: {d.change} {when}"
                                     + (f" ({d.reason})" if d.reason else ""), migration.id, d))
        elif d.status == "added":
            out.append(VerifyFinding(ERROR, "reapply", f"{d.kind} {d.name} appears only {when}", migration.id, d))
        elif d.status == "removed":
            out.append(VerifyFinding(ERROR, "reapply", f"{d.kind} {d.name} is missing {when}", migration.id, d))
        else:
            out.append(VerifyFinding(ERROR, "reapply", f"{d.kind} {d.name} differs {when}: {d.change}"
                                     + (f"\n{d.diff}" if d.diff else ""), migration.id, d))
    return out


def _data_tables(snap: Snapshot) -> list[snapshot.SchemaObject]:
    """Tables holding rows of their own (a partitioned parent's rows are its partitions')."""
    return snap.data_tables()


def _checksum(select: str) -> str:
    return f"(SELECT md5(coalesce(string_agg(r, E'\\n' ORDER BY r), '')) FROM ({select}) s(r))"


def _data_findings(conn, migration: Migration, s0: Snapshot, s1: Snapshot, after: Snapshot,
                   has_fixture: bool) -> list[VerifyFinding]:
    """Rows of tables that exist before and after the rollback that it did not keep."""
    warning = (migration.rollback.header.get("warning") if migration.rollback else None) or ""
    severity = EXPECTED if warning else ERROR
    after_tables = {t.name: t for t in _data_tables(after)}
    out: list[VerifyFinding] = []
    lossy: set[str] = set()
    parts = []
    for index, table in enumerate(_data_tables(s0)):
        live = after_tables.get(table.name)
        if live is None:
            continue
        stash = f"{STASH_SCHEMA}.p0_{index}"
        before_cols = table.get("column order") or ()
        live_cols = set(live.get("column order") or ())
        shared = [c for c in before_cols if c in live_cols]
        dropped = [c for c in before_cols if c not in live_cols]
        stashed = ", ".join(shared)
        current = ", ".join(f"{c}::text" for c in shared)
        per_column = ", ".join(
            f"(SELECT count(*) FROM (SELECT {c} FROM {stash} EXCEPT ALL SELECT {c}::text FROM {live.sql_name}) q)"
            for c in shared) or ""
        dropped_values = ", ".join(f"(SELECT count({c}) FROM {stash})" for c in dropped)
        parts.append(
            f"SELECT {quote_text(table.name)}, (SELECT count(*) FROM {stash}), (SELECT count(*) FROM {live.sql_name}), "
            f"(SELECT count(*) FROM (SELECT {stashed} FROM {stash} EXCEPT ALL SELECT {current} FROM {live.sql_name}) q), "
            f"{_checksum(f'SELECT ROW({stashed})::text FROM {stash}')}, "
            f"{_checksum(f'SELECT ROW({current})::text FROM {live.sql_name}')}, "
            f"array_to_string(ARRAY[{per_column}]::bigint[], ','), array_to_string(ARRAY[{dropped_values}]::bigint[], ','), "
            f"{quote_text(','.join(shared))}, {quote_text(','.join(dropped))}")
    if parts:
        for (name, before_rows, after_rows, lost, sum_before, sum_after, per_column, dropped_values, shared,
             dropped) in conn.execute("\nUNION ALL\n".join(parts)).fetchall():
            per_column, dropped_values = _integers(per_column), _integers(dropped_values)
            shared_cols = shared.split(",") if shared else []
            details = {"table": name, "rows_before": before_rows, "rows_after": after_rows, "rows_lost": lost,
                       "columns_compared": shared_cols, "checksum_before": sum_before, "checksum_after": sum_after}
            if lost:
                changed = [c for c, n in zip(shared_cols, per_column) if n]
                text = (f"table {name}: {lost} of {before_rows} row(s) lost or changed by rollback of {migration.id} "
                        f"(rows {before_rows} -> {after_rows}"
                        + (f"; values changed in {', '.join(changed)}" if changed and after_rows >= before_rows
                           else "") + ")")
                out.append(VerifyFinding(severity, "data", _declared(text, warning), migration.id,
                                   details=details | {"columns_changed": changed}))
                lossy.add(name)
            for column, values in zip(dropped.split(",") if dropped else [], dropped_values):
                if values:
                    text = f"column {name}.{column}: {values} value(s) lost: dropped by rollback of {migration.id}"
                    out.append(VerifyFinding(severity, "data", _declared(text, warning), migration.id,
                                       details={"table": name, "column": column, "values_lost": values}))
                    lossy.add(name)
    if has_fixture:
        out.extend(_fixture_row_findings(conn, migration, s1, after_tables, lossy, severity, warning))
    return out


def _fixture_row_findings(conn, migration, s1, after_tables, lossy, severity, warning) -> list[VerifyFinding]:
    """Rows the fixture added (after the migration, before the rollback) to tables the rollback keeps."""
    parts = []
    for index, table in enumerate(_data_tables(s1)):
        live = after_tables.get(table.name)
        if live is None or table.name in lossy:
            continue
        live_cols = set(live.get("column order") or ())
        shared = [c for c in table.get("column order") or () if c in live_cols]
        cols = ", ".join(shared)
        current = ", ".join(f"{c}::text" for c in shared)
        added = f"SELECT {cols} FROM {STASH_SCHEMA}.p1_{index} EXCEPT ALL SELECT {cols} FROM {STASH_SCHEMA}.pm_{index}"
        everything = f"SELECT * FROM {STASH_SCHEMA}.p1_{index} EXCEPT ALL SELECT * FROM {STASH_SCHEMA}.pm_{index}"
        parts.append(f"SELECT {quote_text(table.name)}, (SELECT count(*) FROM ({everything}) q), "
                     f"(SELECT count(*) FROM (({added}) EXCEPT ALL SELECT {current} FROM {live.sql_name}) q)")
    out = []
    if parts:
        for name, inserted, lost in conn.execute("\nUNION ALL\n".join(parts)).fetchall():
            if lost:
                text = (f"table {name}: {lost} of {inserted} row(s) inserted by fixture.sql lost or changed by "
                        f"rollback of {migration.id}")
                out.append(VerifyFinding(severity, "data", _declared(text, warning), migration.id,
                                   details={"table": name, "fixture_rows": inserted, "rows_lost": lost}))
    return out


def _integers(text: str) -> list[int]:
    return [int(value) for value in text.split(",")] if text else []


def _declared(text: str, warning: str) -> str:
    return f"{text} (expected: the rollback declares \"WARNING: {warning.splitlines()[0]}\")" if warning else text


