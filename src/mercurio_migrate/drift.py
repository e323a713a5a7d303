"""drift (the target's schema against what its applied migrations build) and dump (the migrated schema as
canonical DDL), each built in a scratch database. Returns reports; prints nothing."""

from __future__ import annotations

from dataclasses import dataclass

from mercurio_migrate import planner, snapshot
from mercurio_migrate.engine import Engine
from mercurio_migrate.errors import MercurioError, MigrationFailed
from mercurio_migrate.layout import Migration, discover
from mercurio_migrate.redact import redact_url
from mercurio_migrate.scratch import Scratch
from mercurio_migrate.scratch_runs import Runner, scratch_database, select, take
from mercurio_migrate.snapshot import Difference, Snapshot


@dataclass(frozen=True)
class DriftReport:
    target: str  # redacted URL
    applied: list[str]
    differences: list[Difference]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not snapshot.differences(self.differences)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "target": self.target, "applied": self.applied,
                "differences": [d.as_dict() for d in self.differences], "warnings": self.warnings}


def _migrated_scratch(engine: Engine, scratch: Scratch, migrations: list[Migration], warnings: list[str]
                      ) -> Snapshot:
    runner = Runner(engine, scratch)
    up, _ = runner.parse(migrations)
    conn = scratch.session()
    try:
        runner.engine.ensure_tables(conn)
        try:  # in batches, as `up` runs them
            runner.engine.run_steps(conn, [(m, up[m.version]) for m in migrations], "up")
        except MigrationFailed as failure:
            raise MercurioError(f"building the scratch database: {failure.message}", hint=failure.hint) from None
        warnings.extend(w for w in runner.warnings if w not in warnings)
        return take(conn, runner.engine)
    finally:
        conn.close()


def _read_target(engine: Engine) -> tuple[dict, Snapshot]:
    """The target's history and schema."""
    with engine.session(lock=False) as conn:
        return engine.read_history(conn), snapshot.take(conn, exclude_tables=engine.store.tool_tables)


def drift(engine: Engine) -> DriftReport:
    """The target's schema against a scratch database migrated to the versions the target has applied."""
    found = discover(engine.settings.migrations_dir)
    warnings = [str(w) for w in found.warnings]
    applied, actual = _read_target(engine)
    on_disk = found.by_version()
    missing = [f"{v}_{row.name}" for v, row in sorted(applied.items()) if v not in on_disk]
    if missing:
        raise MercurioError("applied migrations are missing from the migrations folder, so the expected schema "
                            "cannot be rebuilt: " + ", ".join(missing),
                            hint="Restore their folders (e.g. from version control), then run drift again.")
    for state in planner.compute_states(found, applied):
        if state.drifted_files:
            warnings.append(f"{state.version}_{state.name}: {', '.join(state.drifted_files)} changed since it was "
                            "applied; the expected schema is built from today's files")
    migrations = [on_disk[v] for v in sorted(applied)]
    with scratch_database(engine) as scratch:
        expected = _migrated_scratch(engine, scratch, migrations, warnings)
    return DriftReport(redact_url(engine.database_url()), [m.id for m in migrations],
                       snapshot.diff(expected, actual), warnings)


def dump(engine: Engine, *, to: str | None = None, live: bool = False) -> tuple[str, list[str]]:
    """Canonical DDL of the schema the migrations build (or of the target database with ``live``)."""
    found = discover(engine.settings.migrations_dir)
    warnings = [str(w) for w in found.warnings]
    if live:
        with engine.session(lock=False) as conn:
            return snapshot.to_sql(snapshot.take(conn, exclude_tables=engine.store.tool_tables)), warnings
    migrations = select(found.migrations, to)
    with scratch_database(engine) as scratch:
        built = _migrated_scratch(engine, scratch, migrations, warnings)
    return snapshot.to_sql(built), warnings
