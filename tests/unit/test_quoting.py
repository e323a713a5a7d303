"""database.quoter: the same literals as database.literal, the connection's quoting rule read once."""

from __future__ import annotations

import pytest

from mercurio_migrate.database import literal, quoter


class FakeInfo:
    """What literal and quoter read of a connection: its parameter status (no database needed)."""

    def __init__(self, conforming: str) -> None:
        self.conforming, self.reads = conforming, 0

    def parameter_status(self, name: str) -> str:
        assert name == "standard_conforming_strings"
        self.reads += 1
        return self.conforming


class FakeConnection:
    def __init__(self, conforming: str = "on") -> None:
        self.info = FakeInfo(conforming)


VALUES = [None, True, False, 0, 42, -7, 1.5, "", "plain", "it's", "''", "back\\slash", "é ü", "20250101_000001"]


@pytest.mark.parametrize("value", VALUES)
def test_quoter_gives_what_literal_gives(value):
    conn = FakeConnection()
    assert quoter(conn)(value) == literal(conn, value)


def test_quoter_reads_the_quoting_rule_once():
    conn = FakeConnection()
    quote = quoter(conn)
    [quote(v) for v in VALUES]
    assert conn.info.reads == 1


def test_quoter_leaves_non_conforming_connections_to_literal():
    conn = FakeConnection("off")
    pytest.importorskip("psycopg")
    with pytest.raises(Exception):  # noqa: B017 - psycopg needs a real connection to escape: proof literal ran
        quoter(conn)("it's")
    assert quoter(conn)(None) == "NULL"
