"""The console's sealed session cookie and its CSRF token: pure functions."""
from __future__ import annotations

import base64

from services.console import session as sessions

KEYS = sessions.CookieKeys.derive(bytes(range(32)))


def test_a_sealed_session_opens_only_with_its_key():
    session = sessions.Session(token="eyJ.token.here", house="CJ", name="Maria Ionescu")
    sealed = sessions.seal(KEYS, session)
    assert "eyJ" not in sealed and "Maria" not in sealed  # nothing readable in the cookie
    assert sessions.unseal(KEYS, sealed) == session
    other = sessions.CookieKeys.derive(bytes(32))
    assert sessions.unseal(other, sealed) is None


def test_an_edited_or_garbage_cookie_is_no_session():
    sealed = sessions.seal(KEYS, sessions.Session(token="t"))
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[20] ^= 1
    edited = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for value in (edited, "", None, "not base64 at all!", "AAAA", "x" * 5000):
        assert sessions.unseal(KEYS, value) is None


def test_sealing_twice_gives_different_cookies():
    session = sessions.Session(token="t")
    assert sessions.seal(KEYS, session) != sessions.seal(KEYS, session)  # a fresh nonce each time


def test_the_two_derived_keys_differ_and_depend_on_the_data_key():
    assert KEYS.seal != KEYS.csrf and len(KEYS.seal) == len(KEYS.csrf) == 32
    assert sessions.CookieKeys.derive(bytes(range(1, 33))).seal != KEYS.seal


def test_csrf_token_belongs_to_one_session():
    first, second = sessions.Session(), sessions.Session()
    token = sessions.csrf_token(KEYS, first)
    assert sessions.csrf_ok(KEYS, first, token)
    assert not sessions.csrf_ok(KEYS, second, token)
    assert not sessions.csrf_ok(KEYS, first, "")
    assert not sessions.csrf_ok(KEYS, None, token)


def test_logging_in_starts_a_new_session_id():
    before = sessions.Session()
    after = sessions.new_login("token", "Ion")
    assert after.sid != before.sid and after.logged_in and not before.logged_in


def test_keys_from_the_data_key_file(tmp_path):
    path = tmp_path / "data-key"
    path.write_text(bytes(range(32)).hex() + "\n")
    assert sessions.CookieKeys.from_file(path) == KEYS
