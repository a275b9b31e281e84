"""Expiry warnings (issue 15, part 4): days left, the warning days and the dashboard's
windows (shared.expiry), the warning's words (services.ocsp.online.expiry), and the
times a reset replaced a key at (services.ocsp.online.keys)."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from services.ocsp.online.expiry import expiry_fields, expiry_warning, replaced_words, romanian_days
from services.ocsp.online.keys import KeyRecord, apply_key_issued, check_key, replaced_at, replaced_at_of_serial
from services.ocsp.online.sessions import digest_fingerprint, session_key_digest
from shared import expiry
from shared.license import check, check_symbol

NOT_AFTER = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
PEPPER = b"b2" * 32
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("before", "days"), [
    (timedelta(days=30), 30), (timedelta(days=29, hours=23), 30), (timedelta(days=29), 29),
    (timedelta(hours=12), 1), (timedelta(seconds=1), 1), (timedelta(0), 0), (-DAY, 0),
    (timedelta(days=400), 400)])
def test_days_left_rounds_up_and_stops_at_zero(before, days):
    assert expiry.days_left(NOT_AFTER, NOT_AFTER - before) == days


def test_the_warning_starts_exactly_30_days_before_and_ends_at_expiry():
    assert not expiry.warns(NOT_AFTER, NOT_AFTER - 30 * DAY - timedelta(seconds=1))
    assert expiry.warns(NOT_AFTER, NOT_AFTER - 30 * DAY)
    assert expiry.warns(NOT_AFTER, NOT_AFTER - timedelta(seconds=1))
    assert not expiry.warns(NOT_AFTER, NOT_AFTER)  # expired: a refusal, not a warning
    assert expiry.WARNING_DAYS == max(expiry.WINDOWS) == 30


@pytest.mark.parametrize(("before", "window"), [
    (31 * DAY, None), (30 * DAY, 30), (16 * DAY, 30), (15 * DAY, 15), (8 * DAY, 15), (7 * DAY, 7),
    (timedelta(minutes=1), 7), (timedelta(0), None), (-DAY, None)])
def test_the_dashboard_window_is_the_narrowest_that_fits(before, window):
    assert expiry.window_of(NOT_AFTER, NOT_AFTER - before) == window


@pytest.mark.parametrize(("n", "words"), [
    (1, "1 zi"), (2, "2 zile"), (7, "7 zile"), (15, "15 zile"), (19, "19 zile"), (20, "20 de zile"),
    (21, "21 de zile"), (30, "30 de zile"), (101, "101 zile"), (120, "120 de zile"), (200, "200 de zile")])
def test_days_in_romanian(n, words):
    assert romanian_days(n) == words


def test_the_warning_in_both_languages():
    now = NOT_AFTER - 30 * DAY
    assert expiry_warning(NOT_AFTER, now, "ro") == (
        "Certificatul expiră în 30 de zile: reînnoiți-l și conectați-vă cu noul certificat.")
    assert expiry_warning(NOT_AFTER, now, "en") == (
        "The certificate expires in 30 days: renew it and connect with the new certificate.")
    assert expiry_warning(NOT_AFTER, NOT_AFTER - timedelta(hours=3), "ro").startswith("Certificatul expiră în 1 zi:")
    assert expiry_warning(NOT_AFTER, NOT_AFTER - 7 * DAY, "ro").startswith("Certificatul expiră în 7 zile:")
    assert expiry_warning(NOT_AFTER, now - timedelta(seconds=1), "ro") is None


def test_the_answer_fields():
    far = expiry_fields(NOT_AFTER, NOT_AFTER - 90 * DAY, "ro")
    assert far == {"certificate_expires_at": "2027-03-01T12:00:00+00:00", "certificate_days_left": 90}
    near = expiry_fields(NOT_AFTER, NOT_AFTER - 15 * DAY, "en")
    assert near["certificate_days_left"] == 15 and near["warning_code"] == "certificate_expiring"
    assert "15 days" in near["warning"]


# -- when a key was replaced ----------------------------------------------------------

def serial_of(n: int) -> str:
    body = f"{n:016d}".replace("0", "A")
    full = body + check_symbol(body)
    return f"{full[:5]}-{full[5:9]}-{full[9:13]}-{full[13:]}"


def digest_of(serial: str) -> str:
    return hmac.new(PEPPER, check(serial).encode(), hashlib.sha256).hexdigest()


def issued(current, serial, at):
    return apply_key_issued(current, username="12433636_CAS-B", cas="B", provider_cui="12433636",
                            provider_name="SC DEMO", key_digest=digest_of(serial), issued_at=at)


def test_each_replaced_key_remembers_when_the_next_one_was_issued():
    first, second, third = serial_of(1), serial_of(2), serial_of(3)
    record = issued(issued(issued(None, first, T0), second, T0 + DAY), third, T0 + 3 * DAY)
    assert check_key(record, third, PEPPER) == "ok"
    assert replaced_at_of_serial(record, first, PEPPER) == T0 + DAY
    assert replaced_at_of_serial(record, second, PEPPER) == T0 + 3 * DAY
    assert replaced_at_of_serial(record, third, PEPPER) is None  # the current key was not replaced
    assert len(record.previous_replaced_at) == len(record.previous_digests) == 2


def test_a_late_older_key_is_replaced_by_the_first_key_issued_after_it():
    first, second, third = serial_of(1), serial_of(2), serial_of(3)
    record = issued(issued(None, first, T0), third, T0 + 3 * DAY)
    record = issued(record, second, T0 + DAY)  # its event came last
    assert check_key(record, third, PEPPER) == "ok"
    assert replaced_at_of_serial(record, second, PEPPER) == T0 + 3 * DAY
    assert replaced_at_of_serial(record, first, PEPPER) == T0 + 3 * DAY  # as learnt at the time


def test_rows_kept_before_the_times_say_not_known():
    record = KeyRecord("u", "B", key_digest="cc", previous_digests=("aa", "bb"), previous_replaced_at=(T0,))
    assert replaced_at(record, "aa") == T0 and replaced_at(record, "bb") is None
    assert replaced_at(record, "zz") is None and replaced_at(None, "aa") is None
    assert replaced_at_of_serial(record, "not a serial", PEPPER) is None


def test_a_session_token_names_its_replaced_key():
    record = KeyRecord("u", "B", key_digest="cc", previous_digests=("aa", "bb"), previous_replaced_at=(T0, T0 + DAY))
    assert session_key_digest(record, digest_fingerprint("bb")) == "bb"
    assert session_key_digest(record, digest_fingerprint("cc")) is None
    assert session_key_digest(record, None) is None


def test_the_replaced_message_words():
    assert replaced_words(datetime(2026, 12, 2, 14, 5, 30, tzinfo=timezone.utc), "ro") == " la 2026-12-02 14:05 UTC"
    assert replaced_words(T0, "en") == " on 2026-11-01 09:00 UTC"
    assert replaced_words(None, "ro") == ""


# -- the house's counts (certs) and the dashboard's box (console) ---------------------

def test_the_counts_answer_lists_each_house_and_the_totals():
    from services.certs.expiring import counts_json, horizon

    now = datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)
    rows = [{"cas": "B", "days": 30, "count": 3}, {"cas": "B", "days": 15, "count": 2},
            {"cas": "B", "days": 7, "count": 1}, {"cas": "CJ", "days": 30, "count": 4}]
    body = counts_json(rows, now)
    assert body["windows"] == [30, 15, 7] and body["as_of"] == now.isoformat()
    assert body["items"] == [{"cas": "B", "within_30": 3, "within_15": 2, "within_7": 1},
                             {"cas": "CJ", "within_30": 4, "within_15": 0, "within_7": 0}]
    assert body["total"] == {"within_30": 7, "within_15": 2, "within_7": 1}
    # A county's own house is listed with zeros when it has none.
    assert counts_json([], now, houses=["AB"])["items"] == [{"cas": "AB", "within_30": 0, "within_15": 0,
                                                               "within_7": 0}]
    assert horizon(now) == now + 30 * DAY


def test_the_dashboard_box_reads_only_numbers_it_expects():
    from services.console.expiring import box_of

    box = box_of({"windows": [30, 15, 7, "x"], "items": [{"cas": "B", "within_30": 3, "within_7": None}],
                  "total": {"within_30": 3}})
    assert box.windows == (30, 15, 7) and not box.unavailable
    assert box.rows == ({"cas": "B", "counts": {30: 3, 15: 0, 7: 0}},) and box.total == {30: 3, 15: 0, 7: 0}
    assert box.label(30) == "30 de zile" and box.label(7) == "7 zile"
    assert box_of({}).rows == ()
