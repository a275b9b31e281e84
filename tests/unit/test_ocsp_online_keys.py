"""The online channel's keys: applying events in any order, checking a serial, session
tokens, and the usage summary."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest


from services.ocsp.online.keys import KeyRecord, apply_key_issued, apply_user_created, apply_user_deleted, check_key
from services.ocsp.online.keystore import KeyStore
from services.ocsp.online.sessions import SessionSigner, key_fingerprint
from shared.license import load_pepper
from services.ocsp.online.usage import MAX_PER_EVENT, UsageTracker, summarise

PEPPER = b"a1" * 32
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)
USER = "12433636_CAS-B"


def make_key(n: int) -> str:
    """A well-formed serial (the check symbol computed by the licence module)."""
    from shared.license import check_symbol
    body = f"{n:016d}".replace("0", "A")
    full = body + check_symbol(body)
    return f"{full[:5]}-{full[5:9]}-{full[9:13]}-{full[13:]}"


def hexdigest(serial: str) -> str:
    from shared.license import check
    return hmac.new(PEPPER, check(serial).encode(), hashlib.sha256).hexdigest()


def issued(current, serial, at, **kw):
    return apply_key_issued(current, username=USER, cas="B", provider_cui="12433636",
                            provider_name="SC DEMO", key_digest=hexdigest(serial), issued_at=at, **kw)


def test_a_reset_replaces_the_key_and_remembers_the_old_one():
    first, second = make_key(1), make_key(2)
    record = issued(issued(None, first, T0), second, T0 + timedelta(minutes=5))
    assert check_key(record, second, PEPPER) == "ok"
    assert check_key(record, first, PEPPER) == "key_replaced"
    assert check_key(record, make_key(3), PEPPER) == "wrong_key"


def test_a_late_older_key_never_wins():
    first, second = make_key(1), make_key(2)
    record = issued(issued(None, second, T0 + timedelta(minutes=5)), first, T0)
    assert check_key(record, second, PEPPER) == "ok"
    assert check_key(record, first, PEPPER) == "key_replaced"


def test_a_repeated_event_changes_nothing():
    record = issued(None, make_key(1), T0)
    assert issued(record, make_key(1), T0) is record


def test_typos_are_told_apart_from_wrong_keys():
    record = issued(None, make_key(1), T0)
    assert check_key(record, "ABC", PEPPER) == "key_malformed"
    assert check_key(record, make_key(1).lower().replace("-", " "), PEPPER) == "ok"


def test_deleted_or_unknown_users_are_unknown():
    record = issued(None, make_key(1), T0)
    deleted = apply_user_deleted(record, username=USER, cas="B", at=T0 + timedelta(hours=1))
    assert check_key(None, make_key(1), PEPPER) == "unknown_user"
    assert check_key(deleted, make_key(1), PEPPER) == "unknown_user"
    # A key issued after the deletion brings the user back; an older one does not.
    assert check_key(issued(deleted, make_key(2), T0 + timedelta(minutes=1)), make_key(1), PEPPER) == "unknown_user"
    assert check_key(issued(deleted, make_key(2), T0 + timedelta(hours=2)), make_key(2), PEPPER) == "ok"


def test_user_created_before_or_after_its_key():
    created = apply_user_created(None, username=USER, cas="B", provider_cui="12433636",
                                 provider_name="SC DEMO", at=T0)
    assert created.key_digest is None and check_key(created, make_key(1), PEPPER) == "wrong_key"
    with_key = issued(created, make_key(1), T0)
    assert check_key(with_key, make_key(1), PEPPER) == "ok"
    assert apply_user_created(with_key, username=USER, cas="B", provider_cui="x", provider_name="y",
                              at=T0).provider_name == "SC DEMO"


def test_the_store_keeps_the_newest_version():
    store = KeyStore()
    store.put(KeyRecord(USER, "B", key_digest="new", version=3))
    store.put(KeyRecord(USER, "B", key_digest="old", version=2))
    assert store.get(USER).key_digest == "new"


def test_session_tokens_are_signed_and_expire():
    signer = SessionSigner(b"k" * 32)
    token = signer.sign({"u": USER, "exp": 100})
    assert signer.verify(token, 99)["u"] == USER
    assert signer.verify(token, 100) == "session_expired"
    body, _, mac = token.partition(".")
    assert signer.verify(body[:-2] + "xx." + mac, 99) == "session_invalid"
    assert SessionSigner(b"j" * 32).verify(token, 99) == "session_invalid"
    assert signer.verify("garbage", 0) == "session_invalid"


def test_the_pepper_is_read_as_keygen_reads_it(tmp_path):
    path = tmp_path / "license-pepper"
    path.write_text("0f" * 32 + "\n")
    assert load_pepper(path) == bytes.fromhex("0f" * 32)
    path.write_text("not hex at all")
    with pytest.raises(ValueError):
        load_pepper(path)


def test_session_secret_is_derived_not_the_data_key(tmp_path):
    path = tmp_path / "data-key"
    path.write_text("ab" * 32)
    one, two = SessionSigner.from_data_key(path), SessionSigner.from_data_key(path)
    assert one.verify(two.sign({"exp": 10}), 1) == {"exp": 10}
    assert one._secret != bytes.fromhex("ab" * 32)


def test_key_fingerprint_follows_the_current_key():
    first = issued(None, make_key(1), T0)
    second = issued(first, make_key(2), T0 + timedelta(minutes=1))
    assert key_fingerprint(first) != key_fingerprint(second)
    assert key_fingerprint(None) is None


def test_usage_keeps_the_latest_use_and_summarises_per_house():
    tracker = UsageTracker()
    tracker.used("c1", "B", T0)
    tracker.used("c1", "B", T0 + timedelta(seconds=5))
    tracker.used("c1", "B", T0 + timedelta(seconds=1))
    tracker.used("c2", "CJ", T0)
    events = tracker.drain()
    assert tracker.pending == 0
    assert [e.usages for e in events["B"]] == [[{"certificate_id": "c1",
                                                  "last_used_at": (T0 + timedelta(seconds=5)).isoformat()}]]
    assert len(events["CJ"]) == 1


def test_a_big_summary_is_split():
    latest = {f"c{n}": ("B", T0) for n in range(MAX_PER_EVENT + 1)}
    assert [len(e.usages) for e in summarise(latest)["B"]] == [MAX_PER_EVENT, 1]
