"""libpq itself, through ctypes, for the few reads that are a command's whole job.

Importing psycopg costs more than everything else `status` or an up-to-date `up` do (about 0.25 s on
the machines we measure on, against 0.02 s for this module and libpq). So those commands read the
history table here; psycopg stays the driver for everything else. This module is an optimisation only:
any problem (no libpq to load, a connection or query failure, anything unexpected) gives ``None``, and
the caller takes the psycopg path, which reports errors with their full context.

libpq is the one psycopg's binary wheel ships (the same library psycopg then uses), else the system's.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib.util
import os
import sys

CONNECTION_OK = 0
PGRES_TUPLES_OK = 2
PQPING_OK = 0


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


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    strings = ctypes.POINTER(ctypes.c_char_p)
    signatures = {
        "PQconnectdbParams": ([strings, strings, ctypes.c_int], ctypes.c_void_p),
        "PQpingParams": ([strings, strings, ctypes.c_int], ctypes.c_int),
        "PQstatus": ([ctypes.c_void_p], ctypes.c_int),
        "PQfinish": ([ctypes.c_void_p], None),
        "PQexec": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_void_p),
        "PQresultStatus": ([ctypes.c_void_p], ctypes.c_int),
        "PQntuples": ([ctypes.c_void_p], ctypes.c_int),
        "PQnfields": ([ctypes.c_void_p], ctypes.c_int),
        "PQgetvalue": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_char_p),
        "PQgetisnull": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "PQclear": ([ctypes.c_void_p], None),
        "PQparameterStatus": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_char_p),
    }
    for name, (arguments, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = arguments, result
    return lib


def _parameters(settings: dict[str, str]):
    keys = [k.encode() for k in settings] + [None]
    values = [v.encode() for v in settings.values()] + [None]
    return (ctypes.c_char_p * len(keys))(*keys), (ctypes.c_char_p * len(values))(*values)


def ping(conninfo: str) -> bool | None:
    """Whether a server accepts connections at ``conninfo`` (PQping: no session is started); None without libpq."""
    lib = _library()
    if lib is None:
        return None
    keys, values = _parameters({"dbname": conninfo, "connect_timeout": "3"})
    return lib.PQpingParams(keys, values, 1) == PQPING_OK


class Reader:
    """One connection for a few text-format reads, then closed. ``None`` from any method: use psycopg."""

    def __init__(self, lib: ctypes.CDLL, handle: int):
        self._lib, self._handle = lib, handle

    @classmethod
    def open(cls, url: str, application_name: str) -> Reader | None:
        lib = _library()
        if lib is None:
            return None
        keys, values = _parameters({"dbname": url, "application_name": application_name, "connect_timeout": "10",
                                    "client_encoding": "UTF8"})
        handle = lib.PQconnectdbParams(keys, values, 1)
        if not handle:
            return None
        if lib.PQstatus(handle) != CONNECTION_OK:
            lib.PQfinish(handle)
            return None
        return cls(lib, handle)

    def parameter(self, name: str) -> str | None:
        value = self._lib.PQparameterStatus(self._handle, name.encode())
        return value.decode() if value is not None else None

    def rows(self, sql: str) -> list[tuple[str | None, ...]] | None:
        """The rows of one query, every value as text (NULL as None); None if it did not return rows."""
        lib = self._lib
        result = lib.PQexec(self._handle, sql.encode())
        if not result:
            return None
        try:
            if lib.PQresultStatus(result) != PGRES_TUPLES_OK:
                return None
            width = lib.PQnfields(result)
            get, isnull = lib.PQgetvalue, lib.PQgetisnull
            return [tuple(None if isnull(result, row, column) else get(result, row, column).decode()
                          for column in range(width)) for row in range(lib.PQntuples(result))]
        finally:
            lib.PQclear(result)

    def close(self) -> None:
        if self._handle:
            self._lib.PQfinish(self._handle)
            self._handle = 0
