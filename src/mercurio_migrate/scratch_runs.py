"""Running migrations in a scratch database, for verify, drift, dump and explain: the scratch database
for a command, an engine bound to it, a runner that applies single files through that engine (recording the
history as `up` and `down` do) and collects its warnings, the choice of migrations up to a version, and the
snapshot of a scratch database (the tool's tables and verify's row stash left out)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mercurio_migrate import keys, snapshot
from mercurio_migrate.config import Settings
from mercurio_migrate.engine import Engine, Event
from mercurio_migrate.errors import MigrationFailed, UsageError
from mercurio_migrate.layout import Migration
from mercurio_migrate.scratch import Scratch
from mercurio_migrate.snapshot import Snapshot
from mercurio_migrate.sqlscript import Script

STASH_SCHEMA = "mercurio_verify_stash"  # verify --data's row stash: a schema snapshots leave out


class Clock:
    """Milliseconds spent per kind of work."""

    def __init__(self, into: dict[str, float]):
        self.ms = into

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[what] = self.ms.get(what, 0.0) + (time.perf_counter() - started) * 1000


@contextmanager
def scratch_database(engine: Engine, *, keep: bool = False) -> Iterator[Scratch]:
    """A scratch database on ``engine``'s server, dropped at the end (kept with ``keep``). The server builds
    it while the caller reads and parses the migrations; the first connection to it waits for it."""
    scratch = Scratch(engine.database_url())
    try:
        scratch.create(wait=False)
        scratch.options = engine.connection_options()
        yield scratch
    finally:
        scratch.close(keep=keep)


def _scratch_engine(engine: Engine, scratch: Scratch, on_event: Callable[[Event], None]) -> Engine:
    settings: Settings = engine.settings._replace(database_url=scratch.url())
    return Engine(settings, on_event=on_event)


class Runner:
    """Runs single migration files on a given connection through the engine, collecting its warnings."""

    def __init__(self, engine: Engine, scratch: Scratch, clock: Clock | None = None):
        self.warnings: list[str] = []
        self._embedded = engine.settings.database_url is None  # where the PII keys come from (scratch.options)
        self._target_settings = engine.settings
        self.scratch = scratch
        self.engine = _scratch_engine(engine, scratch, self._on_event)
        self.clock = clock or Clock({})

    def _on_event(self, event: Event) -> None:
        # how a file runs (autocommit, as written) is `up`'s news, not a finding about the scratch database
        if event.kind == "warning" and event.data.get("about") != "mode" and event.message not in self.warnings:
            self.warnings.append(event.message)

    def parse(self, migrations: list[Migration]) -> tuple[dict[str, Script], dict[str, Script]]:
        """Every migration.sql and rollback.sql, parsed before anything runs: a syntax error stops verify early."""
        pairs = [(m, m.migration) for m in migrations] + [(m, m.rollback) for m in migrations if m.rollback]
        scripts = self.engine.parse_all(pairs)
        if self.engine.settings.mercurio:
            keys.check_usable(scripts, embedded=self._embedded)
            # the PII keys the migrations need ride in the scratch sessions' settings; on the embedded server the
            # development keys are generated here if `up` has not done it yet, as `up` would
            needed = keys.session_settings(self._target_settings, scripts)
            self.warnings.extend(m for m in needed.messages if m not in self.warnings)
            self.scratch.options = {**self.scratch.options, **dict(needed.items())}
        # verify.sql too, as `up` does it, so that no file is parsed between two runs
        self.engine.parse_verify_scripts(migrations)
        up = {m.version: s for m, s in zip(migrations, scripts)}
        down = {m.version: s for (m, _), s in zip(pairs[len(migrations):], scripts[len(migrations):])}
        return up, down

    def run(self, conn, migration: Migration, script: Script, direction: str) -> MigrationFailed | None:
        # the one-migration step that up() and down() use: it records the history (and migration_log) as they do
        try:
            with self.clock("migrations"):
                self.engine.run_one(conn, migration, script, direction)
        except MigrationFailed as failure:
            return failure
        return None


def leftovers(scratch: Scratch) -> list[str]:
    if not scratch.dropped_leftovers:
        return []
    return [f"dropped {len(scratch.dropped_leftovers)} scratch database(s) left by runs that were killed: "
            + ", ".join(scratch.dropped_leftovers)]


def position(migrations: tuple[Migration, ...], version: str, option: str) -> int:
    for index, migration in enumerate(migrations):
        if version in (migration.version, migration.id):
            return index
    raise UsageError(f"unknown migration version {version!r} ({option})",
                     hint="Use a version (YYYYMMDD_HHMMSS) or folder name from the migrations folder.")


def select(migrations: tuple[Migration, ...], to: str | None) -> list[Migration]:
    if to is None:
        return list(migrations)
    return list(migrations[: position(migrations, to, "--to") + 1])


def take(conn, engine: Engine) -> Snapshot:
    return snapshot.take(conn, exclude_tables=engine.store.tool_tables, exclude_schemas=(STASH_SCHEMA,))


