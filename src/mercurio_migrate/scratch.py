"""The scratch database of verify, drift, dump and explain: ``mercurio_verify_<random>`` on the target's
server (or the embedded one), created from template0 with the target's encoding and collation, and
dropped afterwards; the target itself is never written to.

A light module (no psycopg, no engine) on purpose: the command creates the scratch database through libpq
first thing, and the server builds it (a few hundred milliseconds) while this process imports the engine
and the migrations are parsed. ``session`` then opens the scratch database through libpq too (psycopg only
when libpq cannot be used).
"""

from __future__ import annotations

import secrets
import time

from mercurio_migrate import libpq
from mercurio_migrate.errors import ConnectionFailed, MercurioError
from mercurio_migrate.libpq import Failed as _Failed
from mercurio_migrate.redact import redact_url

SCRATCH_PREFIX = "mercurio_verify_"
MAINTENANCE_DATABASES = ("postgres", "template1")


def _libpq_session(url: str):
    """The maintenance session through libpq itself (mercurio_migrate.libpq.Session), without importing
    psycopg: the server creates the scratch database on the other processor while this process imports
    the rest and parses the migrations. It connects to the target database (only to read pg_database and run
    CREATE and DROP DATABASE, which act on the server); None whenever that is not possible."""
    from mercurio_migrate import __version__
    from mercurio_migrate.database import APPLICATION_NAME

    return libpq.Session.open(url, f"{APPLICATION_NAME} {__version__}")


class _PsycopgSession:
    """The maintenance session through psycopg, on the `postgres` (or `template1`) database of the server."""

    def __init__(self, conn):
        self._conn = conn

    def rows(self, sql: str) -> list[tuple]:
        self.send(sql)
        return self.finish()

    def send(self, sql: str) -> None:
        self._conn.pgconn.send_query(sql.encode("utf-8"))

    def finish(self) -> list[tuple]:
        from psycopg import generators, pq

        failure, rows = None, []
        for result in self._conn.wait(generators.execute(self._conn.pgconn)):
            if result.status == pq.ExecStatus.FATAL_ERROR and failure is None:
                failure = _Failed((result.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode(),
                                  (result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode())
            for row in range(result.ntuples):
                rows.append(tuple(None if result.get_value(row, c) is None else bytes(result.get_value(row, c)).decode()
                                  for c in range(result.nfields)))
        if failure is not None:
            raise failure
        return rows

    def close(self) -> None:
        self._conn.close()


class Scratch:
    """A scratch database on the target's server, created and dropped through a maintenance session."""

    def __init__(self, target_url: str, options: dict[str, str] | None = None):
        self.target_url = target_url
        self.options = options or {}  # session settings of the scratch database's connections
        self.name = SCRATCH_PREFIX + secrets.token_hex(6)
        self.created: list[str] = []
        self._pending: str | None = None  # a database being created (create(wait=False))
        self._on_target = True  # the maintenance session is connected to the target database
        self.maintenance = _libpq_session(target_url) or self._maintenance_connection()

    def url(self, database: str | None = None) -> str:
        """The target's URL naming ``database`` (the scratch database) instead, as a key=value string."""
        url = libpq.conninfo(self.target_url, dbname=database or self.name)
        if url is None:
            from psycopg.conninfo import make_conninfo

            url = make_conninfo(self.target_url, dbname=database or self.name)
        return url

    def _maintenance_connection(self) -> _PsycopgSession:
        failure: ConnectionFailed | None = None
        self._on_target = False
        for database in MAINTENANCE_DATABASES:
            try:
                return _PsycopgSession(_connect(self.url(database)))
            except ConnectionFailed as exc:
                failure = failure or exc
        raise ConnectionFailed(
            f"cannot reach the server of {redact_url(self.target_url)} to create a scratch database: {failure.message}",
            hint="verify, drift and dump need a connection to the `postgres` maintenance database of the same server.")

    def create(self, name: str | None = None, *, template: str | None = None, wait: bool = True) -> None:
        """CREATE DATABASE; with ``wait=False`` the server works on it while we go on (importing the engine,
        parsing the migrations), and the first connection to it, or close(), waits for it."""
        name = name or self.name
        quoted = _ident(name)
        if template:
            self._let_sessions_end(template)
            statement = f"CREATE DATABASE {quoted} TEMPLATE {_ident(template)}"
        else:
            statement = f"CREATE DATABASE {quoted} TEMPLATE template0" + self._locale_clause()
        self._wait()
        self.maintenance.send(statement)
        self._pending = name
        if wait:
            self._wait()

    def _wait(self) -> None:
        """Finish the CREATE DATABASE sent by create(), raising its error."""
        name, self._pending = self._pending, None
        if name is None:
            return
        try:
            self.maintenance.finish()
        except _Failed as failure:
            if failure.sqlstate == "42501":
                raise MercurioError(
                    f"cannot create the scratch database {name} on {redact_url(self.target_url)}: permission "
                    "denied", hint="The role needs CREATEDB (ALTER ROLE … CREATEDB), or run against the embedded "
                                   "server by leaving DATABASE_URL unset.") from None
            raise MercurioError(f"cannot create the scratch database {name} on {redact_url(self.target_url)}: "
                                f"{failure.message}") from None
        self.created.append(name)

    def _locale_clause(self) -> str:
        """The target's encoding and collation, so deparsed text and sorting match it."""
        if self._on_target:
            where = "datname = current_database()"
        else:
            from psycopg.conninfo import conninfo_to_dict

            target = conninfo_to_dict(self.target_url).get("dbname")
            if not target:
                return ""
            where = f"datname = {_literal(target)}"
        rows = self.maintenance.rows(f"SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
                                     f"WHERE {where}")
        if not rows:
            return ""
        encoding, collate, ctype = (str(v).replace("'", "''") for v in rows[0])
        return f" ENCODING '{encoding}' LC_COLLATE '{collate}' LC_CTYPE '{ctype}'"

    def drop(self, name: str) -> None:
        self._let_sessions_end(name)
        try:
            self.maintenance.rows(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
        except _Failed as failure:
            raise MercurioError(f"cannot drop the scratch database {name}: {failure.message}",
                                hint=f"Drop it by hand: DROP DATABASE {_ident(name)} WITH (FORCE);") from None
        if name in self.created:
            self.created.remove(name)

    def _let_sessions_end(self, name: str) -> None:
        """Give the sessions we just closed on ``name`` a moment to end. CREATE DATABASE … TEMPLATE and DROP
        DATABASE wait for a database's sessions in steps of 100 ms, while a closed session ends in about one."""
        query = f"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = {_literal(name)})"
        for _ in range(50):
            if self.maintenance.rows(query)[0][0] in ("f", "false"):
                return
            time.sleep(0.002)

    def close(self, *, keep: bool) -> None:
        try:
            self._wait()
            for name in list(self.created):
                if not (keep and name == self.name):
                    self.drop(name)
        finally:
            self.maintenance.close()

    def connect(self, name: str | None = None):
        """A psycopg connection to the scratch database (or to ``name``)."""
        self._wait()
        return _connect(self.url(name), options=self._session_options())

    def session(self, name: str | None = None):
        """A session on the scratch database (or on ``name``) through libpq itself (libpq.Session: what verify,
        drift and dump need of a connection, without importing psycopg), else through psycopg."""
        from mercurio_migrate import __version__
        from mercurio_migrate.database import APPLICATION_NAME, libpq_options

        self._wait()
        options = libpq_options(self.target_url, self._session_options())
        session = None
        if options is not None:
            session = libpq.Session.open(self.target_url, f"{APPLICATION_NAME} {__version__}", options,
                                         database=name or self.name)
        return session or _connect(self.url(name), options=self._session_options())

    def _session_options(self) -> dict[str, str]:
        # A scratch database is thrown away if the server crashes: its commits need not wait for the disk.
        return self.options | {"synchronous_commit": "off"}


def _literal(text: str) -> str:
    """A string literal for the maintenance session (database names: ours, or the target's)."""
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect(url: str, **kwargs):
    from mercurio_migrate.database import connect

    return connect(url, **kwargs)
