"""The certs service's pure rules: serials, certificate reading, state changes, usage
batches, and writes that outlive a cancelled request."""
from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime, timezone

import pytest

from services.certs import certificates as rules
from services.certs.durable import run_to_completion
from services.certs.pki import (MAX_SERIAL, certificate_facts, issuer_facts, parse_serial, read_certificate,
                                serial_hex, signed_by, to_pem)
from shared import errors
from tests.support.pki import certificate, new_key, root_ca

NOW = datetime(2026, 3, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(("typed", "value"), [
    ("12", 12), (" 12 ", 12), (12, 12), ("0x0C", 12), ("0x0c", 12), ("0X0c", 12),
    ("0x0c:4f", 0x0C4F), ("0x0c 4f", 0x0C4F), ("0x" + "F" * 40, MAX_SERIAL), (str(MAX_SERIAL), MAX_SERIAL)])
def test_serials_are_typed_in_decimal_or_hex(typed, value):
    assert parse_serial(typed) == value


@pytest.mark.parametrize("typed", ["", "0", "-1", "12a", "0x", "0xG1", "1e3", "١٢", str(MAX_SERIAL + 1), True, 1.5, None])
def test_bad_serials_are_422_on_the_serial_field(typed):
    with pytest.raises(errors.Invalid) as caught:
        parse_serial(typed)
    assert set(caught.value.errors) == {"serial"}


def test_serial_hex_has_whole_octets():
    assert (serial_hex(12), serial_hex(0xABC), serial_hex(MAX_SERIAL)) == ("0C", "0ABC", "F" * 40)


def test_pem_and_base64_der_read_the_same_and_garbage_is_a_field_error():
    ca = root_ca("X", now=NOW)
    der = ca.der
    assert read_certificate(ca.pem)[1] == der
    assert read_certificate(base64.encodebytes(der).decode())[1] == der
    assert to_pem(der) == ca.pem
    for text in ("", "hello", ca.pem * 2, ca.pem[:-30], base64.b64encode(b"\x30\x03abc").decode()):
        with pytest.raises(errors.Invalid) as caught:
            read_certificate(text)
        assert set(caught.value.errors) == {"certificate_pem"}


def test_an_issuer_must_be_a_ca_and_its_ocsp_hashes_are_kept():
    ca = root_ca("CA", now=NOW)
    facts = issuer_facts(ca.pem)
    assert facts.subject_dn == "C=RO, CN=CA" and len(facts.name_sha1) == 20 and len(facts.key_sha256) == 32
    self_signed_leaf = certificate("Leaf", now=NOW)
    with pytest.raises(errors.Invalid, match="not a CA"):
        issuer_facts(self_signed_leaf.pem)


@pytest.mark.parametrize("key_type", ["ec", "ed25519"])
def test_signatures_verify_only_with_the_issuers_key(key_type):
    ca = root_ca("CA", now=NOW, key=new_key("ec-p384" if key_type == "ec" else "ed25519"))
    impostor = root_ca("CA", now=NOW)
    leaf = certificate("Leaf", now=NOW, issuer=ca, serial=(1 << 159) - 1)
    facts = certificate_facts(leaf.pem)
    assert (facts.serial, facts.issuer_dn, facts.is_ca) == ((1 << 159) - 1, "C=RO, CN=CA", False)
    assert signed_by(facts.certificate, ca.der)
    assert not signed_by(facts.certificate, impostor.der)


def test_suspension_toggles_and_revocation_is_final():
    assert rules.suspension_change("active", True, NOW, "r") == rules.Change("suspended", "suspended", NOW, "r")
    assert rules.suspension_change("suspended", False, NOW, None).action == "reinstated"
    assert rules.suspension_change("suspended", True, NOW, None) is None
    assert rules.suspension_change("active", False, NOW, None) is None
    with pytest.raises(errors.Conflict):
        rules.suspension_change("revoked", False, NOW, None)
    assert rules.revocation_change("suspended", "keyCompromise", NOW, "c").reason == "key_compromise"
    with pytest.raises(errors.Conflict):
        rules.revocation_change("revoked", "superseded", NOW, None)


@pytest.mark.parametrize(("given", "stored"), [("keyCompromise", "key_compromise"), ("KEY_COMPROMISE", "key_compromise"),
                                               ("superseded", "superseded"), ("cACompromise", "ca_compromise")])
def test_revocation_reasons_are_crl_reasons(given, stored):
    assert rules.revocation_reason(given) == stored


@pytest.mark.parametrize("given", ["certificateHold", "removeFromCRL", "lost", "", None])
def test_other_revocation_reasons_are_refused(given):
    with pytest.raises(errors.Invalid):
        rules.revocation_reason(given)


def test_external_user_names_and_house_names():
    assert rules.looks_external("12433636_CAS-B") and rules.looks_external("1800101221144_CAS-OPSNAJ")
    assert not rules.looks_external("admin") and not rules.looks_external("12433636_CAS-b")
    assert "not an external user" in rules.external_user_problem("admin", national=False)
    assert "in your house" in rules.external_user_problem("1234_CAS-CJ", national=False)
    assert not rules.looks_external("12433636_CAS-XX")  # no such house


def test_usage_batches_keep_what_is_well_formed():
    good = str(uuid.uuid4())
    ids, times = rules.usage_batch([
        {"certificate_id": good, "last_used_at": "2026-03-01T10:00:00+00:00"},
        {"certificate_id": "x", "last_used_at": "2026-03-01T10:00:00+00:00"},
        {"certificate_id": good, "last_used_at": "2026-03-01T10:00:00"},  # no zone
        {"certificate_id": good}, "junk"])
    assert ids == [uuid.UUID(good)] and times == [datetime(2026, 3, 1, 10, tzinfo=timezone.utc)]
    assert rules.usage_batch(None) == ([], [])


async def test_a_durable_write_finishes_when_its_caller_is_cancelled():
    pending: set = set()
    started, release, done = asyncio.Event(), asyncio.Event(), []

    async def write():
        started.set()
        await release.wait()
        done.append("committed")
        return "ok"

    caller = asyncio.create_task(run_to_completion(pending, write()))
    await started.wait()
    caller.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert len(pending) == 1 and not done
    release.set()
    await asyncio.gather(*pending)
    assert done == ["committed"] and not pending


async def test_a_durable_write_answers_its_caller_normally():
    async def write():
        return 42

    assert await run_to_completion(set(), write()) == 42
    with pytest.raises(errors.Conflict):
        async def refused():
            raise errors.Conflict("no")

        await run_to_completion(set(), refused())
