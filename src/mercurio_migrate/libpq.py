"""libpq itself, through ctypes, for the commands whose whole job is a few round trips.

Importing psycopg costs more than everything else `status` or an up-to-date `up` do (about 0.25 s on
the machines we measure on, against 0.02 s for this module and libpq). So those commands read the
history table here, `up`'s quick path applies batches here, and verify, drift and dump drive their
scratch database here (``Session.script`` gives each statement's result and the server's full error
report, as ``database.send_script`` does on psycopg). psycopg stays the driver for everything else. Opening
a session is an optimisation only: when it is not possible (no libpq to load, no connection) ``open``
gives ``None`` and the caller takes the psycopg path, which reports errors with their full context.

libpq is the one psycopg's binary wheel ships (the same library psycopg then uses), else the system's.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
import sys
from typing import NamedTuple

CONNECTION_OK = 0
PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_FATAL_ERROR = 2, 0, 7
PQTRANS_IDLE = 0
PQPING_OK = 0
PG_DIAG_SQLSTATE, PG_DIAG_MESSAGE_PRIMARY = ord("C"), ord("M")
# the fields of an error report ServerError keeps (PQresultErrorField's codes, as psycopg's Diagnostic names them)
_DIAG_FIELDS = {"severity": "S", "sqlstate": "C", "message_primary": "M", "message_detail": "D",
                "message_hint": "H", "statement_position": "P", "context": "W", "schema_name": "s",
                "table_name": "t", "column_name": "c", "constraint_name": "n"}
# result columns Session.execute gives as Python values (_CONVERTERS)
BOOL_OID, INT_OIDS = 16, frozenset({20, 21, 23, 26})  # boolean; int8, int2, int4, oid


@functools.cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("MERCURIO_NO_LIBPQ_FASTPATH"):
        return None
    candidates = []
    spec = importlib.util.find_spec("psycopg_binary")  # finds the package without importing it
    if spec is not None and spec.origin:
        package = os.path.dirname(spec.origin)
        # manylinux wheels: psycopg_binary.libs/ beside the package; macOS wheels: .dylibs/ inside it
        candidates += sorted(glob.glob(package + ".libs/libpq*.so*")) + sorted(glob.glob(package + "/.dylibs/libpq*"))
    candidates += {"darwin": ["libpq.5.dylib"], "win32": ["libpq.dll"]}.get(sys.platform, ["libpq.so.5"])
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
        except OSError:
            continue
        return _declare(library)
    return None


_NOTICE_PROCESSOR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
# The server's NOTICEs (``DROP … IF EXISTS`` skipping, …) are not the tool's output, as on psycopg, where they
# go to its logger: libpq's default processor would print each one to stderr.
_IGNORE_NOTICES = _NOTICE_PROCESSOR(lambda _argument, _message: None)


class _ConninfoOption(ctypes.Structure):  # libpq-fe.h's PQconninfoOption
    _fields_ = [("keyword", ctypes.c_char_p), ("envvar", ctypes.c_char_p), ("compiled", ctypes.c_char_p),
                ("val", ctypes.c_char_p), ("label", ctypes.c_char_p), ("dispchar", ctypes.c_char_p),
                ("dispsize", ctypes.c_int)]


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    strings = ctypes.POINTER(ctypes.c_char_p)
    signatures = {
        "PQconnectdbParams": ([strings, strings, ctypes.c_int], ctypes.c_void_p),
        "PQpingParams": ([strings, strings, ctypes.c_int], ctypes.c_int),
        "PQstatus": ([ctypes.c_void_p], ctypes.c_int),
        "PQfinish": ([ctypes.c_void_p], None),
        "PQsendQuery": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int),
        "PQgetResult": ([ctypes.c_void_p], ctypes.c_void_p),
        "PQresultStatus": ([ctypes.c_void_p], ctypes.c_int),
        "PQresultErrorField": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_char_p),
        "PQerrorMessage": ([ctypes.c_void_p], ctypes.c_char_p),
        "PQntuples": ([ctypes.c_void_p], ctypes.c_int),
        "PQnfields": ([ctypes.c_void_p], ctypes.c_int),
        "PQgetvalue": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_char_p),
        "PQgetisnull": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "PQclear": ([ctypes.c_void_p], None),
        "PQparameterStatus": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_char_p),
        "PQtransactionStatus": ([ctypes.c_void_p], ctypes.c_int),
        "PQport": ([ctypes.c_void_p], ctypes.c_char_p),
        "PQcmdStatus": ([ctypes.c_void_p], ctypes.c_char_p),
        "PQftype": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_uint),
        "PQsetNoticeProcessor": ([ctypes.c_void_p, _NOTICE_PROCESSOR, ctypes.c_void_p], ctypes.c_void_p),
        "PQconninfoParse": ([ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)], ctypes.POINTER(_ConninfoOption)),
        "PQconninfoFree": ([ctypes.POINTER(_ConninfoOption)], None),
        "PQfreemem": ([ctypes.c_void_p], None),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, result
    return lib


def _parameters(settings: dict[str, str]):
    keys = [k.encode() for k in settings] + [None]
    values = [v.encode() for v in settings.values()] + [None]
    return (ctypes.c_char_p * len(keys))(*keys), (ctypes.c_char_p * len(values))(*values)


def conninfo(url: str, **overrides: str) -> str | None:
    """``url`` (a URI or key=value string) as a key=value string with ``overrides`` (e.g. another dbname),
    as libpq parses it (what psycopg's make_conninfo gives); None without libpq or when libpq refuses it."""
    lib = _library()
    if lib is None:
        return None
    error = ctypes.c_void_p()
    options = lib.PQconninfoParse(url.encode("utf-8"), ctypes.byref(error))
    if not options:
        if error.value:
            lib.PQfreemem(error)
        return None
    try:
        values: dict[str, str] = {}
        index = 0
        while (option := options[index]).keyword is not None:
            if option.val is not None:
                values[option.keyword.decode()] = option.val.decode("utf-8", "replace")
            index += 1
    finally:
        lib.PQconninfoFree(options)
    values.update(overrides)
    return " ".join(f"{key}={_conninfo_value(value)}" for key, value in values.items())


def _conninfo_value(value: str) -> str:
    if value and not any(c in value for c in " \t\n\r\\'"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ping(conninfo: str) -> bool | None:
    """Whether a server accepts connections at ``conninfo`` (PQping: no session is started); None without libpq."""
    lib = _library()
    if lib is None:
        return None
    keys, values = _parameters({"dbname": conninfo, "connect_timeout": "3"})
    return lib.PQpingParams(keys, values, 1) == PQPING_OK


class Failed(Exception):
    """A statement sent through a Session failed: its SQLSTATE and PostgreSQL's message."""

    def __init__(self, sqlstate: str, message: str):
        super().__init__(message)
        self.sqlstate, self.message = sqlstate, message


class ServerError(Exception):
    """The server's error report for one statement of ``Session.script``, with the fields psycopg's
    ``Error.diag`` has (``diag`` is the error itself), so the engine reads both the same way."""

    def __init__(self, fields: dict[str, str | None]):
        self.severity = self.sqlstate = self.message_primary = self.message_detail = self.message_hint = None
        self.statement_position = self.context = self.schema_name = self.table_name = None
        self.column_name = self.constraint_name = None
        self.__dict__.update(fields)
        super().__init__(self.message_primary or "error")

    @property
    def diag(self) -> ServerError:
        return self


class ScriptResult(NamedTuple):
    """One statement's outcome in ``Session.script``."""

    ok: bool
    command_status: str
    error: ServerError | None = None
    value: str | None = None  # first column of the first row, as text
    rows: int | None = None  # rows returned (None: not a query)
    value_type: int = 0  # the type OID of the first column of a query


class Result(NamedTuple):
    """One statement's outcome (what a batch needs of it: a failure ends the ordinary path's way)."""

    ok: bool
    value: str | None = None  # the first column of the first row, as text


class Rows(list):
    """What ``Session.execute`` gives: the rows, read as psycopg's cursor is (``fetchall``, ``fetchone``)."""

    def fetchall(self) -> list:
        return list(self)

    def fetchone(self) -> tuple | None:
        return self[0] if self else None


class Session:
    """One connection for a few text-format statements, then closed. ``open`` gives None when it cannot
    connect (no libpq, server unreachable, …): use psycopg, which says why."""

    def __init__(self, lib: ctypes.CDLL, handle: int, options: str | None = None):
        self._lib, self._handle = lib, handle
        self.options = options  # the session settings it was opened with (None: libpq's defaults only)
        self.prepared: set[str] = set()  # the tool's prepared statements on this session (snapshot's)

    @classmethod
    def open(cls, url: str, application_name: str, options: str | None = None,
             database: str | None = None) -> Session | None:
        """``options``: libpq's `options` (``-c name=value`` settings for the session), as psycopg is given.
        ``database``: connect to that database of the URL's server instead of the URL's own (libpq expands
        only the first ``dbname``, the URL; a later one overrides what it says)."""
        lib = _library()
        if lib is None:
            return None
        settings = [("dbname", url), ("application_name", application_name), ("connect_timeout", "10"),
                    ("client_encoding", "UTF8")]
        if options:
            settings.append(("options", options))
        if database:
            settings.append(("dbname", database))
        keys = (ctypes.c_char_p * (len(settings) + 1))(*[k.encode() for k, _ in settings], None)
        values = (ctypes.c_char_p * (len(settings) + 1))(*[v.encode() for _, v in settings], None)
        handle = lib.PQconnectdbParams(keys, values, 1)
        if not handle:
            return None
        if lib.PQstatus(handle) != CONNECTION_OK:
            lib.PQfinish(handle)
            return None
        lib.PQsetNoticeProcessor(handle, _IGNORE_NOTICES, None)
        return cls(lib, handle, options)

    def parameter(self, name: str) -> str | None:
        value = self._lib.PQparameterStatus(self._handle, name.encode())
        return value.decode() if value is not None else None

    # what database.literal and in_failed_or_open_transaction ask of a connection
    parameter_status = parameter

    @property
    def info(self) -> Session:
        return self

    @property
    def port(self) -> str:
        return (self._lib.PQport(self._handle) or b"").decode()

    def in_transaction(self) -> bool:
        return self._lib.PQtransactionStatus(self._handle) != PQTRANS_IDLE

    def results(self, sql: str) -> list[Result]:
        """One Result per statement of ``sql`` run (sent as one message), up to and including the first
        that failed (the server skips the rest)."""
        return [Result(r.ok, r.value) for r in self.script(sql)]

    def script(self, sql: str) -> list[ScriptResult]:
        """One ScriptResult per statement of ``sql`` run (sent as one message), up to and including the first
        that failed (the server skips the rest), with the server's whole error report: what
        ``database.send_script`` gives on psycopg."""
        self.send(sql)
        lib, out = self._lib, []
        while result := lib.PQgetResult(self._handle):
            try:
                status = lib.PQresultStatus(result)
                if status == PGRES_EMPTY_QUERY or (out and not out[-1].ok):
                    continue
                if status == PGRES_FATAL_ERROR:
                    field = lib.PQresultErrorField
                    fields = {name: _text(field(result, ord(code))) for name, code in _DIAG_FIELDS.items()}
                    out.append(ScriptResult(False, "", ServerError(fields)))
                    continue
                tag = _text(lib.PQcmdStatus(result)) or ""
                if status != PGRES_TUPLES_OK:
                    out.append(ScriptResult(True, tag))
                    continue
                rows, value, value_type = lib.PQntuples(result), None, 0
                if lib.PQnfields(result):
                    value_type = lib.PQftype(result, 0)
                    if rows and not lib.PQgetisnull(result, 0, 0):
                        value = lib.PQgetvalue(result, 0, 0).decode("utf-8", "replace")
                out.append(ScriptResult(True, tag, None, value, rows, value_type))
            finally:
                lib.PQclear(result)
        return out

    def finish_last_row(self) -> list[str] | Failed:
        """Wait for what ``send`` sent: the values of its last row set's first row ([] when none), or the
        Failed that stopped it."""
        try:
            rows = self.finish(last_only=True)
        except Failed as failure:
            return failure
        return list(rows[0]) if rows else []

    def execute(self, sql: str, params: tuple | dict | None = None) -> Rows:
        """psycopg's ``execute(...).fetchall()`` for the tool's own catalog reads: ``%s`` / ``%(name)s``
        parameters (numbers, strings, lists of strings) quoted here, every value as text."""
        if params is not None:
            sql = sql % (tuple(map(self._quote, params)) if isinstance(params, tuple)
                         else {k: self._quote(v) for k, v in params.items()})
        self.send(sql)
        return Rows(self.finish(typed=True))

    def _quote(self, value) -> str:
        from mercurio_migrate.database import literal

        if isinstance(value, list | tuple):
            return "ARRAY[" + ", ".join(literal(self, v) for v in value) + "]::text[]"
        return literal(self, value)

    def rows(self, sql: str, last_only: bool = False) -> list[tuple[str | None, ...]]:
        """The rows of ``sql`` (one or more statements), every value as text, NULL as None; Failed on an error."""
        self.send(sql)
        return self.finish(last_only)

    def send(self, sql: str) -> None:
        """Send ``sql`` and return at once: the server works on it until ``finish``."""
        if not self._lib.PQsendQuery(self._handle, sql.encode("utf-8")):
            message = (self._lib.PQerrorMessage(self._handle) or b"").decode("utf-8", "replace").strip()
            raise Failed("08000", message)

    def finish(self, last_only: bool = False, typed: bool = False) -> list[tuple]:
        """Wait for what ``send`` sent: its rows (``last_only``: the last row set's), or Failed with the
        first error. Every value as text, NULL as None; ``typed``: booleans and integers as Python values."""
        lib, failure, rows = self._lib, None, []
        get, isnull = lib.PQgetvalue, lib.PQgetisnull
        while result := lib.PQgetResult(self._handle):
            try:
                if lib.PQresultStatus(result) == PGRES_FATAL_ERROR and failure is None:
                    field = lib.PQresultErrorField
                    failure = Failed((field(result, PG_DIAG_SQLSTATE) or b"").decode(),
                                     (field(result, PG_DIAG_MESSAGE_PRIMARY) or b"").decode("utf-8", "replace"))
                width = lib.PQnfields(result)
                if last_only and lib.PQresultStatus(result) == PGRES_TUPLES_OK:
                    rows = []
                convert = [_CONVERTERS.get(lib.PQftype(result, column)) for column in range(width)] if typed else []
                if not any(convert):
                    convert = []
                for row in range(lib.PQntuples(result)):
                    values = tuple(None if isnull(result, row, column) else get(result, row, column).decode()
                                   for column in range(width))
                    if convert:
                        values = tuple(v if v is None or f is None else f(v) for f, v in zip(convert, values))
                    rows.append(values)
            finally:
                lib.PQclear(result)
        if failure is not None:
            raise failure
        return rows

    def close(self) -> None:
        if self._handle:
            self._lib.PQfinish(self._handle)
            self._handle = 0


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


# Session.execute's Python values by type OID, as psycopg gives them; every other type stays text
_CONVERTERS = {BOOL_OID: lambda text: text == "t", **dict.fromkeys(INT_OIDS, int)}
