"""PostgreSQL's parser (libpg_query, as pglast ships it) without importing pglast's Python package.

pglast's extension module links libpg_query in and exports its C API. ``parse_json`` calls
``pg_query_parse`` in that same shared object through ctypes: the JSON parse tree pglast's
``parse_sql_json`` returns, byte for byte, without importing pglast's Python modules (about 45 ms, most
of what parsing a small migration set costs). When the shared object or its symbols cannot be found,
``parse_json`` uses pglast itself: always correct, only slower.

The structures below are libpg_query's public API (pg_query.h); tests check that both ways give the same
trees and the same errors.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import importlib.util
from pathlib import Path


class ParseFailed(Exception):
    """The parser refused the text: ``message`` and ``offset`` (0-based character index, None if unknown)."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message, offset)
        self.message, self.offset = message, offset


class _Error(ctypes.Structure):
    _fields_ = [("message", ctypes.c_char_p), ("funcname", ctypes.c_char_p), ("filename", ctypes.c_char_p),
                ("lineno", ctypes.c_int), ("cursorpos", ctypes.c_int), ("context", ctypes.c_char_p)]


class _ParseResult(ctypes.Structure):
    _fields_ = [("parse_tree", ctypes.c_void_p), ("stderr_buffer", ctypes.c_void_p),
                ("error", ctypes.POINTER(_Error))]


@functools.cache
def native():
    """(pg_query_parse, pg_query_free_parse_result) from pglast's extension module (loaded once), or None."""
    try:
        spec = importlib.util.find_spec("pglast")  # finds the package without running it
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                candidate = Path(folder) / f"parser{suffix}"
                if candidate.is_file():
                    library = ctypes.CDLL(str(candidate))
                    parse, free = library.pg_query_parse, library.pg_query_free_parse_result
                    parse.argtypes, parse.restype = [ctypes.c_char_p], _ParseResult
                    free.argtypes, free.restype = [_ParseResult], None
                    return parse, free
    except (OSError, AttributeError, ImportError, ValueError):
        pass
    return None


def parse_json(text: str) -> str:
    """libpg_query's JSON parse tree of ``text``; ParseFailed when it is not valid SQL."""
    native_parser = native()
    if native_parser is None:
        return _parse_json_with_pglast(text)
    parse, free = native_parser
    result = parse(text.encode("utf-8"))
    try:
        if result.error:
            error = result.error.contents
            message = (error.message or b"syntax error").decode("utf-8", "replace")
            raise ParseFailed(message, _offset(text, error.cursorpos))
        return ctypes.string_at(result.parse_tree).decode("utf-8")
    finally:
        free(result)


def _parse_json_with_pglast(text: str) -> str:
    from pglast.parser import ParseError, parse_sql_json

    try:
        return parse_sql_json(text)
    except ParseError as exc:
        message = exc.args[0] if exc.args else str(exc)
        offset = exc.args[1] if len(exc.args) > 1 else None
        raise ParseFailed(str(message), offset) from None


def _offset(text: str, cursorpos: int) -> int | None:
    """PostgreSQL reports an error's position as the 1-based index of a character (as pglast does)."""
    index = cursorpos - 1
    return index if 0 <= index < len(text) else None
