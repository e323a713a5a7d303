"""The tool's state: its history table and the seed's ``migration_log``. DDL and the queries on them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

HISTORY_TABLE = "public.mercurio_migrations"
PROGRESS_TABLE = "public.mercurio_migration_progress"
MIGRATION_LOG_TABLE = "migration_log"

HISTORY_DDL = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
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
COMMENT ON TABLE {HISTORY_TABLE} IS 'mercurio-migrate: one row per applied migration (do not edit by hand)';
"""

# Statement-by-statement migrations (autocommit, as written) commit part by part: each committed part is
# recorded here in the same transaction as its statements, and each statement that cannot run in a
# transaction (CREATE INDEX CONCURRENTLY, …) is recorded as started before it runs, with what the catalog
# held then (``detail``), so that a run resumed after a crash knows exactly what committed and can recognise
# what it built. The rows of a migration go when it is recorded as applied or rolled back.
PROGRESS_DDL = f"""
CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (
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
COMMENT ON TABLE {PROGRESS_TABLE} IS 'mercurio-migrate: statements of an unfinished statement-by-statement migration (do not edit by hand)';
"""

# The seed's table; defaults let its own `INSERT INTO migration_log (migration_name, records_processed,
# completed_at[, notes])` statements run verbatim.
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

# whether the history table exists, and migration_log's schema-qualified name (NULL: absent), so that the
# tool's own rows land in it whatever search_path a migration sets
TABLES_EXIST_SQL = (
    f"SELECT to_regclass('{HISTORY_TABLE}') IS NOT NULL, (SELECT format('%I.%I', n.nspname, c.relname) "
    f"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass('{MIGRATION_LOG_TABLE}')), "
    f"to_regclass('{PROGRESS_TABLE}') IS NOT NULL"
)

SELECT_PROGRESS_SQL = f"""
SELECT version, direction, checksum, statement, line, state, detail, at
FROM {PROGRESS_TABLE} ORDER BY version, direction, statement
"""

SELECT_HISTORY_SQL = f"""
SELECT version, name, checksum, rollback_checksum, applied_at, execution_ms, records_processed,
       transaction_mode, applied_by, client_host, tool_version
FROM {HISTORY_TABLE} ORDER BY version
"""

SELECT_LOG_SQL = f"""
SELECT migration_name, records_processed, completed_at, notes
FROM {MIGRATION_LOG_TABLE} ORDER BY completed_at DESC NULLS LAST LIMIT %s
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
CLEAN_SESSION_SQL = ";\n".join(CLEAN_SESSION_STATEMENTS)

# The migration lock (engine.LOCK_NAMESPACE, 0) as pg_locks shows it while this session holds it
LOCK_NAMESPACE = 1296911687  # 'MMIG'
LOCK_HELD_SQL = (
    "EXISTS (SELECT FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() "
    f"AND classid = {LOCK_NAMESPACE}::bigint::oid AND objid = 0 AND objsubid = 2 AND granted)"
)
# An expression that fails the statement holding it unless this session still holds the migration lock: a
# migration that released it (pg_advisory_unlock_all()) must not be recorded, since another runner may be
# applying the same migrations now. Plain SQL has no RAISE: the failure is a cast whose message says why
# (made of a STABLE function's result, so that the planner cannot fold the cast, and fail, ahead of time).
LOCK_LOST_MESSAGE = "mercurio-migrate: the migration lock was released during this migration"
LOCK_CHECK_EXPR = (f"CASE WHEN {LOCK_HELD_SQL} THEN 0 "
                   f"ELSE ('{LOCK_LOST_MESSAGE}' || left(pg_catalog.pg_backend_pid()::text, 0))::integer END")
LOCK_CHECK_SQL = f"SELECT {LOCK_CHECK_EXPR}"


_HISTORY_COLUMNS = ("version, name, checksum, rollback_checksum, applied_at, execution_ms, records_processed, "
                    "transaction_mode, client_host, tool_version")
def missing_tables_ddl(has_history: bool, has_log: bool) -> str:
    """The DDL creating whichever of the history table and migration_log is absent ('' when both exist)."""
    return ("" if has_history else HISTORY_DDL) + ("" if has_log else MIGRATION_LOG_DDL)


def insert_applied_sql() -> str:
    return (
        f"INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS}) VALUES ({{version}}, {{name}}, {{checksum}}, "
        "{rollback_checksum}, clock_timestamp(), {execution_ms}, {records}, {mode}, {client_host}, {tool_version})"
    )


def update_checksums_sql() -> str:
    return (f"UPDATE {HISTORY_TABLE} SET name = {{name}}, checksum = {{checksum}}, "
            "rollback_checksum = {rollback_checksum} WHERE version = {version}")


def delete_applied_sql() -> str:
    return f"DELETE FROM {HISTORY_TABLE} WHERE version = {{version}}"


def clear_progress_sql() -> str:
    """Forget a migration's statement progress (it is now recorded as applied or rolled back)."""
    return f"DELETE FROM {PROGRESS_TABLE} WHERE version = {{version}}"


def insert_log_sql(table: str = MIGRATION_LOG_TABLE) -> str:
    return (
        f"INSERT INTO {table} (migration_name, records_processed, completed_at, notes) "
        "VALUES ({migration_name}, {records}, clock_timestamp(), {notes})"
    )


# --- a batch's bookkeeping as prepared statements ---------------------------------------------------
# Several migrations sent in one message (engine.run_steps) record themselves through statements prepared
# at the start of that message: the server parses and plans the tool's bookkeeping once per message instead
# of once per migration. One statement records a migration: it measures the step, writes the history row
# and the migration_log row, and returns the step's milliseconds. The names carry a random token (no clash
# with a session's own, nor with one a failed message left behind) and are deallocated at the end of the
# message.
BATCH_PRELUDE_RESULTS = BATCH_CLOSING_RESULTS = 2  # the two PREPAREs; the two DEALLOCATEs


def batch_statement_names(token: str) -> tuple[str, str]:
    return f"mercurio_step_start_{token}", f"mercurio_record_{token}"


def batch_prepare_sql(token: str, direction: str, log_table: str, check_lock: bool = True) -> str:
    """PREPARE the step-start marker and the record statement (EXECUTE record(version, name, checksum,
    rollback_checksum, mode, client_host, tool_version, migration_id))."""
    start, record = batch_statement_names(token)
    verb = "applied" if direction == "up" else "rolled back"
    log = (f"logged AS (INSERT INTO {log_table} (migration_name, records_processed, completed_at, notes) "
           f"SELECT $8, 0, clock_timestamp(), '{verb} by mercurio-migrate ' || $7 || ' (' || $5 || ', ' || "
           "round(ms, 1) || ' ms)' FROM step)")
    if direction == "up":
        change = (f"applied AS (INSERT INTO {HISTORY_TABLE} ({_HISTORY_COLUMNS}) SELECT $1, $2, $3, $4, "
                  f"clock_timestamp(), ms, 0, $5, $6, $7 FROM step)")
    else:
        change = f"removed AS (DELETE FROM {HISTORY_TABLE} WHERE version = $1)"
    return (f"PREPARE {start} AS {STEP_START_SQL};\n"
            f"PREPARE {record} (text, text, text, text, text, text, text, text) AS "
            f"WITH step AS (SELECT {_STEP_MS_EXPR}{' + ' + LOCK_CHECK_EXPR if check_lock else ''} AS ms), {change}, "
            f"{log} SELECT ms FROM step;\n")


def batch_deallocate_sql(token: str) -> str:
    start, record = batch_statement_names(token)
    return f"DEALLOCATE {start};\nDEALLOCATE {record};\n"
