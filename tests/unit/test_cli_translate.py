"""A failure of the server or the connection reaches the user as a database error with a hint, never as an
internal error."""

from __future__ import annotations

import psycopg

from mercurio_migrate.cli import _translate
from mercurio_migrate.errors import ConnectionFailed


def test_a_psycopg_failure_is_a_database_error():
    error = _translate(psycopg.OperationalError("terminating connection due to administrator command"))
    assert isinstance(error, ConnectionFailed)
    assert error.message == "database error: terminating connection due to administrator command"
    assert "Run the command again" in error.hint


def test_anything_else_stays_an_internal_error():
    error = _translate(ValueError("boom"))
    assert not isinstance(error, ConnectionFailed) and error.message.startswith("internal error (ValueError")
