"""libpq.conninfo: a URL (URI or key=value) naming another database, as libpq parses it, with no psycopg in
the way; it must mean exactly what psycopg's make_conninfo gives (no database needed: libpq's parser only)."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from mercurio_migrate import libpq

URLS = [
    "postgresql://bob:s3cr%20et@db.example:6543/app?sslmode=require&application_name=a%20b",
    "postgresql:///x?host=%2Ftmp%2Fa%20b",
    "postgres://alice@localhost/app?dbname=other",
    "host=/tmp user=x dbname=y password='it\\'s a \\\\ secret'",
    "host=localhost port=5433",
    "",
]


@pytest.mark.skipif(libpq._library() is None, reason="libpq cannot be loaded here")
@pytest.mark.parametrize("url", URLS)
def test_same_meaning_as_psycopg(url):
    ours = libpq.conninfo(url, dbname="mercurio_verify_x")
    assert ours is not None
    assert conninfo_to_dict(ours) == conninfo_to_dict(make_conninfo(url, dbname="mercurio_verify_x"))
    assert conninfo_to_dict(ours)["dbname"] == "mercurio_verify_x"


@pytest.mark.skipif(libpq._library() is None, reason="libpq cannot be loaded here")
@pytest.mark.parametrize("url", ["nonsense", "postgresql://[bad", "host='unterminated"])
def test_what_libpq_refuses_gives_none(url):
    assert libpq.conninfo(url, dbname="x") is None
