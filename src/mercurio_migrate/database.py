"""One connection to PostgreSQL and the few ways the tool talks over it: the driver seam.

The tool has one driver, psycopg 3, and uses only its documented API. Everything it needs of a connection
is ``Connection`` below (psycopg's Connection is one): ``execute`` for the tool's own queries (rows and
a single row), ``send_script`` here for SQL files (one simple-query message, each statement's result or
the error with its position), and the transaction status. Another driver would implement these and
``connect``; nothing else in the tool touches the driver.

Scripts are sent with the simple-query protocol, several statements in one message, so a migration
costs one round trip; each statement's result (row count, or the error) is still seen separately.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from mercurio_migrate import __version__
from mercurio_migrate.errors import ConnectionFailed, UsageError
from mercurio_migrate.redact import misread_password, redact_url, scrub, secrets_of

APPLICATION_NAME = "mercurio-migrate"
_OPTION_SEPARATORS = frozenset(" \t\n\r\v\f\\")  # what the server's pg_split_opts splits on, and its escape
BOOL_OID = 16  # pg_type.oid of boolean


class Rows(Protocol):
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...


class Connection(Protocol):
    """What the tool uses of a database connection (psycopg.Connection provides it)."""

    closed: bool

    def execute(self, query: str, params: tuple | dict | None = None) -> Rows: ...  # the tool's own queries
    def close(self) -> None: ...
    def cancel_safe(self) -> None: ...  # Ctrl-C during a message: the server stops the running statement

    @property
    def info(self) -> Any: ...  # dbname, host, port, backend_pid, encoding, parameter_status(name)

    @property
    def pgconn(self) -> Any: ...  # psycopg.pq.PGconn: send_script's one message and its results


class StatementResult(NamedTuple):
    ok: bool
    command_status: str
    rowcount: int
    error: Any = None  # psycopg.Error for the failed statement
    value: str | None = None  # a query's first column of its first row, as text (the tool's step markers)
    rows: int | None = None  # rows a query returned (None: the statement is not a query)
    value_type: int = 0  # the type OID of a query's first column


def connect(url: str, *, options: dict[str, str] | None = None, connect_timeout: int = 10) -> Connection:
    """Open the command's one connection (autocommit: the tool sends BEGIN/COMMIT itself)."""
    check_url(url)
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout,
                              "application_name": f"{APPLICATION_NAME} {__version__}"}
    if options:
        # libpq ignores PGOPTIONS once `options` is given: keep the user's settings in front of ours
        kwargs["options"] = " ".join(filter(None, (os.environ.get("PGOPTIONS"), _url_options(url),
                                                   _own_options(options))))
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.ProgrammingError as exc:  # malformed conninfo: a configuration error
        raise _invalid_url(url, str(exc)) from None
    except psycopg.OperationalError as exc:
        message = str(exc).strip()
        hint = "Check that the server is running and the URL is right."
        if "password authentication failed" in message:
            hint = "Check the user name and password (set the password in PGPASSWORD or ~/.pgpass)."
        elif "does not exist" in message and "database" in message:
            hint = "Create the database first (createdb), or point DATABASE_URL at an existing one."
        raise ConnectionFailed(f"cannot connect to {redact_url(url)}: {scrub(message, *secrets_of(url))}",
                               hint=hint) from None


def check_url(url: str) -> None:
    """Before any connection: UsageError (that never shows the password) for a URL libpq refuses, or one
    whose password libpq would read in part as the host or port (a ``/`` or ``@`` in it)."""
    from mercurio_migrate.redact import ConninfoError, parse

    try:
        parse(url)
    except ConninfoError as exc:
        raise _invalid_url(url, str(exc)) from None
    if misread_password(url):
        raise UsageError(
            f"the database URL {redact_url(url)} holds a '/' or '@' in its password (or an '@' outside its user "
            "name and password): libpq ends the password at the first of them and would read the rest as the "
            "host, port or database",
            hint="Percent-encode them in the URL (/ as %2F, @ as %40), or leave the password out of the URL and "
                 "set it in PGPASSWORD or ~/.pgpass.")


def _invalid_url(url: str, libpq_message: str) -> UsageError:
    return UsageError(
        f"the database URL is not valid ({redact_url(url)}): {scrub(libpq_message.strip(), *secrets_of(url))}",
        hint="Use a libpq URI such as postgresql://user@host:5432/dbname (password in PGPASSWORD or ~/.pgpass).")


def _own_options(options: dict[str, str]) -> str:
    from mercurio_migrate.keys import unusable_key

    # a PII key that is not usable is never sent: a command that needs it says so (keys.session_settings)
    return " ".join(f"-c {key}={_escape_option(value)}" for key, value in options.items()
                    if not unusable_key(key, value))


def _url_options(url: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(url).get("options")
    except Exception:  # noqa: BLE001 - a malformed URL is reported by connect() itself
        return None


def _escape_option(value: str) -> str:
    """Backslash-escape backslashes and every white-space character, as the server splits `options` on
    them: an unescaped tab would end the value and make the rest a server argument of its own."""
    return "".join("\\" + c if c in _OPTION_SEPARATORS else c for c in str(value))


@functools.cache
def client_host() -> str:
    """This machine's host name: uname's node name where there is one (what gethostname() returns, without
    importing socket, 6 ms of every `up`)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def send_script(conn: Connection, sql: str) -> list[StatementResult]:
    """Send ``sql`` (one or more statements) as one simple-query message; one result per statement run.

    After an error the server skips the rest of the message, so the last result is the failed one.
    ``conn``: a psycopg connection (driven through its documented low-level ``pgconn``).

    Ctrl-C while the server works cancels the running statement and waits for the server to answer, so
    the results of the statements that completed (a batch's committed migrations) are still read; then
    ``Interrupted`` is raised carrying them.
    """
    from psycopg import errors as pg_errors
    from psycopg import pq

    raw, interrupted = _exchange(conn, sql.encode(conn.info.encoding))
    out: list[StatementResult] = []
    for result in raw:
        status = result.status
        if status == pq.ExecStatus.FATAL_ERROR:
            error = pg_errors.error_from_result(result, encoding=conn.info.encoding)
            out.append(StatementResult(False, "", 0, error))
            break
        if status == pq.ExecStatus.EMPTY_QUERY:
            continue
        tag = (result.command_status or b"").decode("utf-8", "replace")
        value, rows, value_type = None, None, 0
        if status == pq.ExecStatus.TUPLES_OK:
            rows = result.ntuples
            if result.nfields:
                value_type = result.ftype(0)
                raw_value = result.get_value(0, 0) if rows else None
                value = None if raw_value is None else bytes(raw_value).decode("utf-8", "replace")
        out.append(StatementResult(True, tag, _rows_from_tag(tag), None, value, rows, value_type))
    if interrupted:
        raise Interrupted(out)
    return out


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a message: ``results`` are the statements the server completed before it stopped."""

    def __init__(self, results: list[StatementResult]):
        super().__init__()
        self.results = results


def _exchange(conn, message: bytes) -> tuple[list, bool]:
    """Send one simple-query message and read every result until the server is done with it, waiting on the
    socket with select() (psycopg's documented pq API; no private helper). (results, interrupted)."""
    import select

    pgconn = conn.pgconn
    pgconn.send_query(message)
    while pgconn.flush():
        select.select([], [pgconn.socket], [])
    return _read(conn)


def read_results(conn) -> list:
    """Every result of the message sent last on ``conn`` (pq results, as they came)."""
    results, interrupted = _read(conn)
    if interrupted:
        raise KeyboardInterrupt
    return results


def _read(conn) -> tuple[list, bool]:
    import select

    pgconn = conn.pgconn
    results, interrupted = [], False
    while True:
        try:
            pgconn.consume_input()
            while pgconn.is_busy():
                select.select([pgconn.socket], [], [])
                pgconn.consume_input()
        except KeyboardInterrupt:
            if not interrupted:
                interrupted = True
                conn.cancel_safe()
            continue
        result = pgconn.get_result()
        if result is None:
            return results, interrupted
        results.append(result)


def _rows_from_tag(tag: str) -> int:
    parts = tag.split()
    if len(parts) >= 2 and parts[-1].isdigit() and parts[0] in ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY",
                                                               "SELECT", "MOVE", "FETCH"):
        return int(parts[-1])
    return 0


def in_failed_or_open_transaction(conn: Connection) -> bool:
    from psycopg import pq

    return conn.pgconn.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


def quote_ident(name: str) -> str:
    """An identifier for the tool's own SQL (one name; schema-qualify with '.'.join of quoted parts)."""
    return '"' + name.replace('"', '""') + '"'


def quote_text(text: str) -> str:
    """A string literal for the tool's own SQL, sent with standard_conforming_strings on (every supported
    server's default; ``literal`` asks the connection when it has one)."""
    return "'" + text.replace("'", "''") + "'"


def literal(conn, value: Any) -> str:
    """An SQL literal for the tool's own bookkeeping statements (sent with the simple-query protocol)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str) and conn.info.parameter_status("standard_conforming_strings") == "on" \
            and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    from psycopg import sql

    return sql.Literal(value).as_string(conn)


def quoter(conn) -> Callable[[Any], str]:
    """``literal`` bound to ``conn`` for many values: the connection's quoting rule read once (a batch of
    migrations quotes seven values each)."""
    if conn.info.parameter_status("standard_conforming_strings") != "on":
        return lambda value: literal(conn, value)

    def quote(value: Any) -> str:
        if isinstance(value, str) and "\x00" not in value:
            return "'" + value.replace("'", "''") + "'"
        return literal(conn, value)

    return quote
