"""The libpq fast path's history rows: JSON from the server → HistoryRow, as psycopg would give them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mercurio_migrate import history, libpq


def document(micros: int) -> str:
    return json.dumps([["20250101_000000", "first", "c" * 64, None, micros, 12.5, 3, "own-transaction", "app",
                        "host", "0.1.0"]])


def test_rows_carry_exact_microseconds_in_the_sessions_zone():
    micros = 1_764_614_400_123_456  # 2025-12-01 18:40:00.123456 UTC
    row = history.rows_from_json(document(micros), "Asia/Kolkata")["20250101_000000"]
    assert row.applied_at == datetime(2025, 12, 1, 18, 40, 0, 123456, tzinfo=UTC)
    assert row.applied_at.utcoffset() == timedelta(hours=5, minutes=30)
    assert (row.execution_ms, row.records_processed, row.rollback_checksum) == (12.5, 3, None)


def test_an_unknown_or_missing_zone_reads_as_utc():
    for zone in (None, "", "Not/AZone"):
        row = history.rows_from_json(document(0), zone)["20250101_000000"]
        assert row.applied_at == datetime(1970, 1, 1, tzinfo=UTC) and row.applied_at.utcoffset() == timedelta(0)


def test_the_fast_path_can_be_switched_off(monkeypatch):
    libpq._library.cache_clear()
    monkeypatch.setenv("MERCURIO_NO_LIBPQ_FASTPATH", "1")
    try:
        assert libpq.Session.open("postgresql:///nowhere", "test") is None
        assert libpq.ping("postgresql:///nowhere") is None
    finally:
        libpq._library.cache_clear()


def test_ping_and_open_say_no_for_a_server_that_is_not_there(tmp_path):
    libpq._library.cache_clear()
    url = f"postgresql://postgres@/x?host={tmp_path}&port=1"
    assert libpq.ping(url) is False
    assert libpq.Session.open(url, "test") is None
