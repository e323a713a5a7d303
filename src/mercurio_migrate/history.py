"""The tool's state: its history and progress tables (HistoryStore, named by the ``history_table`` setting) and,
with the mercurio profile, the seed's ``migration_log``. DDL and the queries on them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

DEFAULT_HISTORY_TABLE = "public.mercurio_migrations"
# the progress table of the default history table keeps the name it has always had (databases migrated before
# history_table was configurable hold it); a configured history table's progress table is <schema>.<name>_progress
DEFAULT_PROGRESS_TABLE = "public.mercurio_migration_progress"
PROGRESS_SUFFIX = "_progress"
MIGRATION_LOG_TABLE = "migration_log"

# The seed's table, kept by the mercurio profile only; defaults let its own `INSERT INTO migration_log
# (migration_name, records_processed, completed_at[, notes])` statements run verbatim.
MIGRATION_LOG_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATION_LOG_TABLE} (
    id                 BIGSERIAL PRIMARY KEY,
    migration_name     VARCHAR(255) NOT NULL,
    records_processed  BIGINT DEFAULT 0,
    completed_at       TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    notes              TEXT
);
COMMENT ON TABLE {MIGRATION_LOG_TABLE} IS 'Migration audit log: one row per applied or rolled-back migration';
"""


class HistoryRow(NamedTuple):
    version: str
    name: str
    checksum: str
    rollback_checksum: str | None
    applied_at: datetime
    execution_ms: float
    records_processed: int
    transaction_mode: str
    applied_by: str
    client_host: str | None
    tool_version: str


# A transactional migration's time is measured by the server, from just after its BEGIN to the end of its
# statements, so that several migrations sent in one message (each in its own transaction) are each timed
# exactly; now() would not do, it is the same for every transaction of a message. The two markers are
# SET LOCAL settings: they vanish with the transaction. Epoch seconds as float8 text, so that no DateStyle
# or TimeZone a migration sets can change how they read back (and float8, not numeric: cheaper).
STEP_START_SQL = "SELECT set_config('mercurio.step_started', date_part('epoch', clock_timestamp())::text, true)"
# milliseconds since the start marker (taken by the end marker, or by a batch's record statement itself)
_STEP_MS_EXPR = (
    "round(((date_part('epoch', clock_timestamp()) - coalesce(nullif(current_setting('mercurio.step_started', "
    "true), '')::float8, date_part('epoch', clock_timestamp()))) * 1000)::numeric, 3)"
)
STEP_END_SQL = f"SELECT set_config('mercurio.step_ms', {_STEP_MS_EXPR}::text, true)"
STEP_MS_SQL = "current_setting('mercurio.step_ms')::numeric"

# After a migration's own statements, before the tool records it: a role it took (SET ROLE, SET SESSION
# AUTHORIZATION) is dropped, so that the record is written, and the next migration runs, as the user the
# tool connected as (RESET ALL leaves the role alone). In the migration's transaction, so that a rollback
# keeps them together.
RESET_ROLE_STATEMENTS = ("RESET SESSION AUTHORIZATION", "RESET ROLE")
# After the record and before COMMIT: settings it changed for the session and temp tables it left go, so
# that the next migration starts as the first did.
CLEAN_SESSION_STATEMENTS = ("RESET ALL", "DISCARD TEMP")

LOCK_NAMESPACE = 1296911687  # 'MMIG': the migration lock is the advisory lock (LOCK_NAMESPACE, 0)
# An expression that fails the statement holding it unless this session still holds the migration lock: a
# migration that released it (pg_advisory_unlock_all()) must not be recorded, since another runner may be
# applying the same migrations now. The session holds the lock twice (migration_lock.acquire), so
# pg_advisory_unlock, true only while it is held, drops one hold and pg_advisory_lock takes it back at once:
# two function calls, where reading pg_locks costs a scan of the server's lock table per migration. Plain
# SQL has no RAISE: the failure is a cast whose message says why (made of a STABLE function's result, so
# that the planner cannot fold the cast, and fail, ahead of time).
LOCK_LOST_MESSAGE = "mercurio-migrate: the migration lock was released during this migration"
LOCK_CHECK_EXPR = (f"CASE WHEN pg_catalog.pg_advisory_unlock({LOCK_NAMESPACE}, 0) "
                   f"THEN length(pg_catalog.pg_advisory_lock({LOCK_NAMESPACE}, 0)::text) "  # void as text: '', 0
                   f"ELSE ('{LOCK_LOST_MESSAGE}' || left(pg_catalog.pg_backend_pid()::text, 0))::integer END")
LOCK_CHECK_SQL = f"SELECT {LOCK_CHECK_EXPR}"


_HISTORY_COLUMNS = ("version, name, checksum, rollback_checksum, applied_at, execution_ms, records_processed, "
                    "transaction_mode, client_host, tool_version")


class HistoryStore:
    """The tool's tables in a database, and every statement on them: the history table (``table``,
    ``schema.name``, from the ``history_table`` setting), its progress table beside it, and the seed's
    ``migration_log`` when ``migration_log`` is True (the mercurio profile). ``table`` is a validated name
    (config.history_table_name): lower-case identifiers that need no quoting."""

    def __init__(self, table: str = DEFAULT_HISTORY_TABLE, *, migration_log: bool = False):
        self.table = table
        self.schema, self.name = table.split(".")
        self.progress_table = DEFAULT_PROGRESS_TABLE if table == DEFAULT_HISTORY_TABLE else table + PROGRESS_SUFFIX
        self.migration_log = migration_log

    @classmethod
    def for_settings(cls, settings) -> HistoryStore:
        return cls(settings.history_table, migration_log=settings.mercurio)

    def __repr__(self) -> str:
        return f"HistoryStore({self.table!r}, migration_log={self.migration_log})"

    @property
    def tool_tables(self) -> tuple[str, ...]:
        """The tool's own tables, schema-qualified, as every snapshot and data check leaves them out."""
        log = (f"public.{MIGRATION_LOG_TABLE}",) if self.migration_log else ()
        return (self.table, self.progress_table, *log)

    # --- DDL ----------------------------------------------------------------------------------------
    @property
    def history_ddl(self) -> str:
        # a schema of its own is created with the table (public is left alone: creating it, even IF NOT
        # EXISTS, needs the CREATE privilege on the database)
        schema = "" if self.schema == "public" else f"CREATE SCHEMA IF NOT EXISTS {self.schema};\n"
        return f"""{schema}
CREATE TABLE IF NOT EXISTS {self.table} (
    version            TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    checksum           TEXT NOT NULL,
    rollback_checksum  TEXT,
    applied_at         TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    execution_ms       NUMERIC(14, 3) NOT NULL DEFAULT 0,
    records_processed  BIGINT NOT NULL DEFAULT 0,
    transaction_mode   TEXT NOT NULL,
    applied_by         TEXT NOT NULL DEFAULT current_user,
    client_host        TEXT,
    tool_version       TEXT NOT NULL
);
COMMENT ON TABLE {self.table} IS 'mercurio-migrate: one row per applied migration (do not edit by hand)';
"""

    # Statement-by-statement migrations (autocommit, as written) commit part by part: each committed part is
    # recorded here in the same transaction as its statements, and each statement that cannot run in a
    # transaction (CREATE INDEX CONCURRENTLY, …) is recorded as started before it runs, with what the catalog
    # held then (``detail``), so that a run resumed after a crash knows exactly what committed and can
    # recognise what it built. The rows of a migration go when it is recorded as applied or rolled back.
    @property
    def progress_ddl(self) -> str:
        return f"""
CREATE TABLE IF NOT EXISTS {self.progress_table} (
    version    TEXT NOT NULL,
    direction  TEXT NOT NULL CHECK (direction IN ('up', 'down')),
    checksum   TEXT NOT NULL,
    statement  INTEGER NOT NULL,
    line       INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('started', 'done')),
    detail     JSONB,
    at         TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (version, direction, statement)
);
COMMENT ON TABLE {self.progress_table} IS 'mercurio-migrate: statements of an unfinished statement-by-statement migration (do not edit by hand)';
"""

    def missing_tables_ddl(self, has_history: bool, has_log: bool) -> str:
        """The DDL creating whichever of the history table and migration_log (with the profile) is absent
        ('' when none is)."""
        log = "" if has_log or not self.migration_log else MIGRATION_LOG_DDL
        return ("" if has_history else self.history_ddl) + log

    # --- queries ------------------------------------------------------------------------------------
    @property
    def tables_exist_sql(self) -> str:
        """Whether the history table exists, migration_log's schema-qualified name (NULL: absent, or no
        migration_log kept), whether the progress table exists. migration_log is found through the
        search_path and named in full, so that the tool's own rows land in it whatever search_path a
        migration sets."""
        log = (f"(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n "
               f"ON n.oid = c.relnamespace WHERE c.oid = to_regclass('{MIGRATION_LOG_TABLE}'))"
               if self.migration_log else "NULL::text")
        return (f"SELECT to_regclass('{self.table}') IS NOT NULL, {log}, "
                f"to_regclass('{self.progress_table}') IS NOT NULL")

    @property
    def select_history_sql(self) -> str:
        return (f"SELECT version, name, checksum, rollback_checksum, applied_at, execution_ms, records_processed, "
                f"transaction_mode, applied_by, client_host, tool_version FROM {self.table} ORDER BY version")

    @property
    def select_progress_sql(self) -> str:
        return (f"SELECT version, direction, checksum, statement, line, state, detail, at "
                f"FROM {self.progress_table} ORDER BY version, direction, statement")

    @staticmethod
    def select_log_sql(log_table: str) -> str:
        return (f"SELECT migration_name, records_processed, completed_at, notes FROM {log_table} "
                "ORDER BY completed_at DESC NULLS LAST LIMIT %s")

    # --- writes (str.format templates of SQL literals) ---------------------------------------------------
    def insert_applied_sql(self) -> str:
        return (
            f"INSERT INTO {self.table} ({_HISTORY_COLUMNS}) VALUES ({{version}}, {{name}}, {{checksum}}, "
            "{rollback_checksum}, clock_timestamp(), {execution_ms}, {records}, {mode}, {client_host}, {tool_version})"
        )

    def update_checksums_sql(self) -> str:
        return (f"UPDATE {self.table} SET name = {{name}}, checksum = {{checksum}}, "
                "rollback_checksum = {rollback_checksum} WHERE version = {version}")

    def delete_applied_sql(self) -> str:
        return f"DELETE FROM {self.table} WHERE version = {{version}}"

    def clear_progress_sql(self) -> str:
        """Forget a migration's statement progress (it is now recorded as applied or rolled back)."""
        return f"DELETE FROM {self.progress_table} WHERE version = {{version}}"

    @staticmethod
    def insert_log_sql(log_table: str) -> str:
        return (
            f"INSERT INTO {log_table} (migration_name, records_processed, completed_at, notes) "
            "VALUES ({migration_name}, {records}, clock_timestamp(), {notes})"
        )

    # --- a batch's bookkeeping as prepared statements -------------------------------------------------
    # Several migrations sent in one message (engine.run_steps) record themselves through statements
    # prepared at the start of that message: the server parses and plans the tool's bookkeeping once per
    # message instead of once per migration. One statement records a migration: it measures the step,
    # writes the history row (and, with the profile, the migration_log row), and returns the step's
    # milliseconds. The names carry a random token (no clash with a session's own, nor with one a failed
    # message left behind) and are deallocated at the end of the message.
    def batch_prepare_sql(self, token: str, direction: str, log_table: str | None, check_lock: bool = True) -> str:
        """PREPARE the step-start marker and the record statement (EXECUTE record(version, name, checksum,
        rollback_checksum, mode, client_host, tool_version, migration_id)). ``log_table``: migration_log's
        name, None when no migration_log row is written."""
        start, record = batch_statement_names(token)
        verb = "applied" if direction == "up" else "rolled back"
        if direction == "up":
            change = (f"applied AS (INSERT INTO {self.table} ({_HISTORY_COLUMNS}) SELECT $1, $2, $3, $4, "
                      f"clock_timestamp(), ms, 0, $5, $6, $7 FROM step)")
        else:
            change = f"removed AS (DELETE FROM {self.table} WHERE version = $1)"
        if log_table is not None:
            change += (f", logged AS (INSERT INTO {log_table} (migration_name, records_processed, completed_at, "
                       f"notes) SELECT $8, 0, clock_timestamp(), '{verb} by mercurio-migrate ' || $7 || ' (' || $5 "
                       "|| ', ' || round(ms, 1) || ' ms)' FROM step)")
        return (f"PREPARE {start} AS {STEP_START_SQL};\n"
                f"PREPARE {record} (text, text, text, text, text, text, text, text) AS "
                f"WITH step AS (SELECT {_STEP_MS_EXPR}{' + ' + LOCK_CHECK_EXPR if check_lock else ''} AS ms), "
                f"{change} SELECT ms FROM step;\n")


BATCH_PRELUDE_RESULTS = BATCH_CLOSING_RESULTS = 2  # the two PREPAREs; the two DEALLOCATEs


def batch_statement_names(token: str) -> tuple[str, str]:
    return f"mercurio_step_start_{token}", f"mercurio_record_{token}"


def batch_deallocate_sql(token: str) -> str:
    start, record = batch_statement_names(token)
    return f"DEALLOCATE {start};\nDEALLOCATE {record};\n"
