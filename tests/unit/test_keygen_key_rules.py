"""Activation key rules: which button fits, the key and its digest, the event, the date."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from services.keygen import keys
from shared.usernames import external_username
from shared import errors, license

PEPPER = bytes(range(32))
NOW = datetime(2026, 3, 1, 22, 30, tzinfo=timezone.utc)
PROVIDER = {"id": "6f1c3a52-1111-4222-8333-444455556666", "cas": "B", "cui": "12433636",
            "code": "12433636", "name": "SC DEMO MEDICAL SRL", "trade_register_no": "J40/10/3456",
            "legal_representative_name": "Ion Popescu", "legal_representative_cnp": "1800101221144"}


def test_generare_only_without_a_key_and_resetare_only_with_one():
    keys.check_issue(has_key=False, reset=False)
    keys.check_issue(has_key=True, reset=True)
    with pytest.raises(errors.Conflict, match="already has a key: use Resetare parola"):
        keys.check_issue(has_key=True, reset=False)
    with pytest.raises(errors.Conflict, match="no key yet: use Generare parola"):
        keys.check_issue(has_key=False, reset=True)


def test_a_new_key_is_well_formed_and_only_its_digest_is_shown():
    key = keys.new_key(PEPPER, NOW)
    assert license.is_well_formed(key.serial)
    assert key.digest == hmac.new(PEPPER, key.serial.encode(), hashlib.sha256).digest()
    assert key.issued_at == NOW
    assert key.serial not in repr(key) and key.digest.hex() not in repr(key)
    assert keys.new_key(PEPPER, NOW).serial != key.serial


def test_the_random_source_is_injectable():
    fixed = keys.new_key(PEPPER, NOW, randbits=lambda bits: 0)
    assert fixed.serial == license.generate(randbits=lambda bits: 0)


def test_external_username():
    assert external_username("12433636", "B") == "12433636_CAS-B"
    assert external_username("12433636", "OPSNAJ") == "12433636_CAS-OPSNAJ"


def test_key_issued_carries_the_digest_never_the_key():
    key = keys.new_key(PEPPER, NOW)
    event = keys.key_issued(PROVIDER, key, reset=True, issued_by="clerk.b")
    assert event.to_data() == {
        "provider_id": PROVIDER["id"], "cui": "12433636", "provider_code": "12433636",
        "provider_name": "SC DEMO MEDICAL SRL", "key_id": key.key_id,
        "key_digest": key.digest.hex(), "reset": True, "issued_at": NOW.isoformat(),
        "issued_by": "clerk.b", "external_user": "12433636_CAS-B"}
    assert key.serial not in repr(event.to_data())
    assert key.serial.replace("-", "") not in repr(event.to_data())


def test_the_agreement_is_dated_in_romania():
    # 22:30 UTC on 1 March is 00:30 on 2 March in Bucharest (EET, UTC+2).
    assert keys.agreement_day(NOW) == date(2026, 3, 2)
    data = keys.agreement_for(PROVIDER, keys.new_key(PEPPER, NOW))
    assert (data.house, data.cui, data.representative_cnp, data.date) == \
        ("B", "12433636", "1800101221144", date(2026, 3, 2))
