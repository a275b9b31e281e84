"""The OCSP log's pure parts: the buffer's bounds, row encoding, and query filters."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.ocsp.log.filters import parse_filters, parse_serial, parse_time
from services.ocsp.log.routes import entry_json
from services.ocsp.log.writer import to_record
from services.ocsp.log import LogEntry, OpLog
from services.ocsp.log.queries import LOG_COLUMNS
from shared import errors
from shared.auth import Principal

AT = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
NATIONAL = Principal("admin", "CNAS", frozenset({"ocsp-log:read"}))
COUNTY = Principal("op.cj", "CJ", frozenset({"ocsp-log:read"}))


def entry(n: int = 0, **kw) -> LogEntry:
    return LogEntry(**{"at": AT, "operation": "ocsp", "status": "good", "latency_ms": 0.4,
                       "client": "127.0.0.1", "serial": str(n), **kw})


def test_entries_come_out_in_the_order_recorded():
    log = OpLog(capacity=10, batch_size=2)
    for n in range(5):
        log.record(entry(n))
    assert [e.serial for e in log.take(3)] == ["0", "1", "2"]
    assert log.pending == 2


def test_a_full_buffer_drops_and_counts_instead_of_blocking():
    log = OpLog(capacity=3, batch_size=1)
    for n in range(5):
        log.record(entry(n))
    assert log.pending == 3 and log.dropped == 2
    assert [e.serial for e in log.take(10)] == ["0", "1", "2"]


def test_record_never_raises_even_on_nonsense():
    log = OpLog(capacity=2, batch_size=1)
    log.record(None)  # type: ignore[arg-type]  # a caller's bug must not fail an answer
    log.record(entry())
    assert log.pending == 2


def test_a_failed_batch_goes_back_in_front_and_only_overflow_is_lost():
    log = OpLog(capacity=4, batch_size=1)
    for n in range(4):
        log.record(entry(n))
    batch = log.take(3)
    log.record(entry(9))
    log.record(entry(10))
    log.put_back(batch)
    # Order kept for what fits; the two that no longer fit are counted as dropped.
    assert [e.serial for e in log.take(10)] == ["0", "3", "9", "10"]
    assert log.dropped == 2


async def test_waiting_ends_as_soon_as_a_batch_is_ready():
    log = OpLog(capacity=10, batch_size=2)
    log.record(entry(1))
    log.record(entry(2))
    await log.wait_for_batch(5)  # returns at once: would time the test out otherwise
    log.take(2)
    assert not log._full.is_set()


def test_rows_follow_the_copy_columns():
    record = to_record(entry(7, cas="B", username="1_CAS-B", issuer_id="i", certificate_id="c",
                             detail="wrong_key", operation="connect", status="offline"))
    assert dict(zip(LOG_COLUMNS, record)) == {
        "at": AT, "operation": "connect", "status": "offline", "latency_ms": 0.4,
        "client": "127.0.0.1", "cas": "B", "username": "1_CAS-B", "serial": "7", "issuer_id": "i",
        "certificate_id": "c", "detail": "wrong_key"}


def test_unstorable_entries_are_refused_one_by_one():
    assert to_record(entry(at="yesterday")) is None
    assert to_record(entry(latency_ms="fast")) is None
    assert to_record(entry(latency_ms=float("nan")))[3] == -1.0


@pytest.mark.parametrize("text, expected", [("12", "12"), ("0x0C", "12"), ("0c", None),
                                             ("0x0a:ff", "2815"), ("-1", None), ("abc", None)])
def test_serials_are_read_as_decimal_or_hex(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            parse_serial(text)
    else:
        assert parse_serial(text) == expected


def test_times_without_offset_are_utc():
    assert parse_time("2026-03-01T10:00:00") == AT
    assert parse_time("2026-03-01T12:00:00+02:00") == AT
    assert parse_time("2026-03-01T10:00:00Z") == AT


def test_county_readers_see_their_house_whatever_they_ask():
    assert parse_filters({"cas": "B"}, COUNTY).cas == "CJ"
    assert parse_filters({}, COUNTY).cas == "CJ"
    assert parse_filters({"cas": "b"}, NATIONAL).cas == "B"
    assert parse_filters({}, NATIONAL).cas is None


def test_bad_filters_name_every_field():
    with pytest.raises(errors.Invalid) as caught:
        parse_filters({"status": "fine", "serial": "x", "from": "soon", "operation": "nap",
                       "cas": "ZZ"}, NATIONAL)
    assert set(caught.value.errors) == {"status", "serial", "from", "operation", "cas"}
    with pytest.raises(errors.Invalid) as caught:
        parse_filters({"from": "2026-03-02", "to": "2026-03-01"}, NATIONAL)
    assert set(caught.value.errors) == {"to"}


def test_filters_are_normalised():
    f = parse_filters({"serial": "0x10", "status": "good", "from": "2026-03-01"}, NATIONAL)
    assert (f.serial, f.status, f.since) == ("16", "good", datetime(2026, 3, 1, tzinfo=timezone.utc))


def test_entry_json_shape():
    row = {"id": 5, **dict(zip(LOG_COLUMNS, to_record(entry(3))))}
    assert entry_json(row) == {
        "id": 5, "at": "2026-03-01T10:00:00+00:00", "operation": "ocsp", "status": "good",
        "latency_ms": 0.4, "client": "127.0.0.1", "cas": None, "username": None, "serial": "3",
        "issuer_id": None, "certificate_id": None, "detail": None}
