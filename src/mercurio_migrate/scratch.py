"""The scratch database of verify, drift, dump and explain: ``mercurio_verify_<random>`` on the target's
server (or the embedded one), created from template0 with the target's encoding and collation, and
dropped afterwards; the target itself is never written to.

The command sends CREATE DATABASE first thing (``create(wait=False)``) and the server builds it while this
process parses the migrations; the first connection to it waits for it.
"""

from __future__ import annotations

import secrets
import time

from mercurio_migrate.database import quote_ident, quote_text
from mercurio_migrate.errors import ConnectionFailed, MercurioError
from mercurio_migrate.redact import redact_url

SCRATCH_PREFIX = "mercurio_verify_"
# the comment of a scratch database while its owner runs: "<OWNER_NOTE> <backend pid> started <backend_start>"
OWNER_NOTE = "mercurio-migrate scratch database of backend"
MAINTENANCE_DATABASES = ("postgres", "template1")


class _Failed(Exception):
    """A maintenance statement failed (its SQLSTATE and message)."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


class _MaintenanceSession:
    """The session that creates and drops scratch databases: one statement can be sent and its answer read
    later (``send`` / ``finish``), so that the server builds a database while the caller goes on."""

    def __init__(self, conn):
        self._conn = conn

    def rows(self, sql: str) -> list[tuple]:
        self.send(sql)
        return self.finish()

    def send(self, sql: str) -> None:
        self._conn.pgconn.send_query(sql.encode("utf-8"))

    def finish(self) -> list[tuple]:
        from psycopg import pq

        from mercurio_migrate.database import read_results

        failure, rows = None, []
        for result in read_results(self._conn):
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
        self.created: list[str] = []
        self._pending: str | None = None  # a database being created (create(wait=False))
        self._on_target = True  # the maintenance session is connected to the target database
        self.maintenance = self._maintenance_connection()
        # the owning process, in the name and (with its start) in the comment of every database made here:
        # a run killed before it could drop its databases leaves them to the next run's drop_leftovers()
        self._owner = self.maintenance.rows("SELECT pg_backend_pid(), backend_start FROM pg_stat_activity "
                                            "WHERE pid = pg_backend_pid()")[0]
        self.name = f"{SCRATCH_PREFIX}{self._owner[0]}_{secrets.token_hex(4)}"
        self.dropped_leftovers = self.drop_leftovers()

    def url(self, database: str | None = None) -> str:
        """The target's URL naming ``database`` (the scratch database) instead, as a key=value string."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.target_url, dbname=database or self.name)

    def _maintenance_connection(self) -> _MaintenanceSession:
        """On the target database itself (CREATE and DROP DATABASE act on the server), else on `postgres` or
        `template1` of the same server."""
        try:
            return _MaintenanceSession(_connect(self.target_url))
        except ConnectionFailed as exc:
            failure: ConnectionFailed = exc
        self._on_target = False
        for database in MAINTENANCE_DATABASES:
            try:
                return _MaintenanceSession(_connect(self.url(database)))
            except ConnectionFailed as exc:
                failure = failure or exc
        raise ConnectionFailed(
            f"cannot reach the server of {redact_url(self.target_url)} to create a scratch database: {failure.message}",
            hint="verify, drift and dump need a connection to the `postgres` maintenance database of the same server.")

    def create(self, name: str | None = None, *, template: str | None = None, wait: bool = True) -> None:
        """CREATE DATABASE; with ``wait=False`` the server works on it while we go on (importing the engine,
        parsing the migrations), and the first connection to it, or close(), waits for it."""
        name = name or self.name
        quoted = quote_ident(name)
        if template:
            self._let_sessions_end(template)
            statement = f"CREATE DATABASE {quoted} TEMPLATE {quote_ident(template)}"
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
        pid, started = self._owner
        self._comment(name, f"{OWNER_NOTE} {pid} started {started}")

    def _comment(self, name: str, text: str) -> None:
        self.maintenance.rows(f"COMMENT ON DATABASE {quote_ident(name)} IS {quote_text(text)}")

    def drop_leftovers(self) -> list[str]:
        """Drop the scratch databases of runs whose session is gone (killed before they could drop them):
        those whose comment names an owner session that no longer exists. Kept ones (--keep) and those of
        running sessions stay; one this role may not drop is left alone."""
        pattern = quote_text("^" + OWNER_NOTE + r" (\d+) started (.+)$")
        rows = self.maintenance.rows(
            "SELECT datname FROM (SELECT d.datname, regexp_match(c.description, " + pattern + ") AS owner "
            "FROM pg_database d JOIN pg_shdescription c ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass "
            f"WHERE d.datname LIKE {quote_text(SCRATCH_PREFIX + '%')}) s WHERE owner IS NOT NULL AND NOT EXISTS "
            "(SELECT FROM pg_stat_activity a WHERE a.pid::text = owner[1] AND a.backend_start::text = owner[2])")
        dropped = []
        for (name,) in rows:
            try:
                self.maintenance.rows(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                dropped.append(name)
            except _Failed:
                continue
        return dropped

    def _locale_clause(self) -> str:
        """The target's encoding and collation, so deparsed text and sorting match it."""
        if self._on_target:
            where = "datname = current_database()"
        else:
            from psycopg.conninfo import conninfo_to_dict

            target = conninfo_to_dict(self.target_url).get("dbname")
            if not target:
                return ""
            where = f"datname = {quote_text(target)}"
        rows = self.maintenance.rows(f"SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database "
                                     f"WHERE {where}")
        if not rows:
            return ""
        encoding, collate, ctype = (str(v).replace("'", "''") for v in rows[0])
        return f" ENCODING '{encoding}' LC_COLLATE '{collate}' LC_CTYPE '{ctype}'"

    def drop(self, name: str) -> None:
        self._let_sessions_end(name)
        try:
            self.maintenance.rows(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        except _Failed as failure:
            raise MercurioError(f"cannot drop the scratch database {name}: {failure.message}",
                                hint=f"Drop it by hand: DROP DATABASE {quote_ident(name)} WITH (FORCE);") from None
        if name in self.created:
            self.created.remove(name)

    def _let_sessions_end(self, name: str) -> None:
        """Give the sessions we just closed on ``name`` a moment to end. CREATE DATABASE … TEMPLATE and DROP
        DATABASE wait for a database's sessions in steps of 100 ms, while a closed session ends in about one."""
        query = f"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = {quote_text(name)})"
        for _ in range(50):
            if self.maintenance.rows(query)[0][0] in ("f", "false"):
                return
            time.sleep(0.002)

    def close(self, *, keep: bool) -> None:
        try:
            self._wait()
            for name in list(self.created):
                if keep and name == self.name:
                    self._comment(name, "mercurio-migrate scratch database kept with --keep: drop it by hand")
                else:
                    self.drop(name)
        finally:
            self.maintenance.close()

    def connect(self, name: str | None = None):
        """A psycopg connection to the scratch database (or to ``name``)."""
        self._wait()
        return _connect(self.url(name), options=self._session_options())

    def session(self, name: str | None = None):
        """A connection to the scratch database (or to ``name``)."""
        return self.connect(name)

    def _session_options(self) -> dict[str, str]:
        # A scratch database is thrown away if the server crashes: its commits need not wait for the disk.
        return self.options | {"synchronous_commit": "off"}


def _connect(url: str, **kwargs):
    from mercurio_migrate.database import connect

    return connect(url, **kwargs)
