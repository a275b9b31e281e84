"""The online channel and a renewed certificate (issue 15), over real TLS, fed by real
events: a renewal of a registered certificate is answered renewal_pending and reported to
certs (RenewalPresented, once), a rejected one renewal_rejected with the house's reason,
an approved one goes online beside the old; and one certificate registered in two houses
is decided per user while OCSP answers it by the rule across houses."""
from __future__ import annotations

import uuid

import pytest
from cryptography import x509

from services.ocsp.responder import REGISTRY
from shared.clock import utc_now
from shared.events import RenewalRejected
from tests.support.bus import tapped
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness, Provider
from tests.support.pki import TestPki
from tests.support.wait import eventually


@pytest.fixture(scope="module")
def world() -> TestPki:
    return TestPki(utc_now().replace(microsecond=0), label=f"renewals {uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
async def ca(harness: Harness, world):
    return await harness.register_issuer(Issuer(world.issuing))


@pytest.fixture
async def ocsp_events(common_config):
    async with tapped(common_config.events_exchange, "ocsp.renewal_presented") as tap:
        yield tap


def holder_name(cui: str) -> x509.Name:
    return x509.Name.from_rfc4514_string(f"CN=Dr {cui},O=Cabinet {cui},C=RO")


async def enrolled(harness: Harness, ca: Issuer, house: str = "B"):
    cui = new_cui()
    username = f"{cui}_CAS-{house}"
    old = Provider.of(ca.issue(holder_name(cui)), harness.directory)
    certificate_id = await harness.publish_certificate(ca, old, username)
    await registered(harness.app, ca, old.serial)
    return cui, username, old, certificate_id, await harness.issue_key(username)


async def test_a_renewal_waits_for_approval_then_goes_online_beside_the_old(harness, ca, ocsp_events):
    cui, username, old, old_id, key = await enrolled(harness, ca)
    renewed = Provider.of(ca.issue(holder_name(cui)), harness.directory)

    status, body = await harness.connect(renewed, username, key)
    assert status == 401 and body["semaphore"] == "offline" and body["reason"] == "renewal_pending"
    assert "așteaptă aprobarea casei" in body["message"] and format(renewed.serial, "X") in body["message"]
    status, body = await harness.connect(renewed, username, key, language="en")
    assert body["reason"] == "renewal_pending" and "awaits your insurance house's approval" in body["message"]
    event = await ocsp_events.one("ocsp.renewal_presented", username=username)
    assert event.data["serial"] == str(renewed.serial) and event.data["issuer_id"] == ca.issuer_id
    assert event.data["replaces"] == old_id and event.data["presented_from"] == "127.0.0.1"
    assert x509.load_pem_x509_certificate(event.data["certificate_pem"].encode()).serial_number == renewed.serial
    # Reported once: a later report (another user's renewal), published after it from the
    # same outbox, arrives with no second one of this certificate before it.
    marker_cui, marker_user, _, _, marker_key = await enrolled(harness, ca)
    marker = Provider.of(ca.issue(holder_name(marker_cui)), harness.directory)
    assert (await harness.connect(marker, marker_user, marker_key))[1]["reason"] == "renewal_pending"
    await ocsp_events.one("ocsp.renewal_presented", username=marker_user)
    assert len(ocsp_events.events("ocsp.renewal_presented", username=username)) == 1

    # Only to the user's right key: another key learns nothing of a renewal.
    status, body = await harness.connect(renewed, username, "AAAAA-AAAA-AAAA-AAAA")
    assert body["reason"] != "renewal_pending"
    # Another holder's certificate from the same authority is simply not registered.
    stranger = Provider.of(ca.issue(holder_name(new_cui())), harness.directory)
    status, body = await harness.connect(stranger, username, key)
    assert body["reason"] == "certificate_not_registered"

    # The house approves: certs registers the new certificate (CertificateRegistered).
    await harness.publish_certificate(ca, renewed, username)
    await registered(harness.app, ca, renewed.serial)
    status, body = await harness.connect(renewed, username, key)
    assert status == 200 and body["semaphore"] == "online"
    status, body = await harness.connect(old, username, key)
    assert status == 200, body  # the old one stays valid until it expires or is retired


async def test_a_rejected_renewal_tells_the_provider_why(harness, ca):
    cui, username, old, old_id, key = await enrolled(harness, ca, house="CJ")
    renewed = Provider.of(ca.issue(holder_name(cui)), harness.directory)
    status, body = await harness.connect(renewed, username, key)
    assert body["reason"] == "renewal_pending"
    await harness.publish(RenewalRejected(renewal_id=str(uuid.uuid4()), username=username, issuer_id=ca.issuer_id,
                                          serial=str(renewed.serial), reason="Lipsește formularul semnat",
                                          rejected_at=utc_now().isoformat(), rejected_by="ion.cj"), "CJ")

    async def refused():
        status, body = await harness.connect(renewed, username, key)
        return body if body["reason"] == "renewal_rejected" else None

    body = await eventually(refused, what="renewal_rejected")
    assert "a respins certificatul nou" in body["message"] and "Lipsește formularul semnat" in body["message"]


async def test_one_certificate_in_two_houses_is_decided_per_user(harness, ca):
    cui = new_cui()
    shared_cert = Provider.of(ca.issue(holder_name(cui)), harness.directory)
    in_b, in_cj = f"{cui}_CAS-B", f"{cui}_CAS-CJ"
    await harness.publish_certificate(ca, shared_cert, in_b)
    cj_id = await harness.publish_certificate(ca, shared_cert, in_cj)
    registry = harness.app[REGISTRY]
    async def both():
        return len(registry.house_records(ca.issuer_id, shared_cert.serial)) == 2

    await eventually(both, what="both houses' records")
    key_b, key_cj = await harness.issue_key(in_b), await harness.issue_key(in_cj)
    assert (await harness.connect(shared_cert, in_b, key_b))[0] == 200
    assert (await harness.connect(shared_cert, in_cj, key_cj))[0] == 200

    await harness.publish_certificate(ca, shared_cert, in_cj, status="suspended", certificate_id=cj_id)
    async def suspended_in_cj():
        return registry.house_record(ca.issuer_id, shared_cert.serial, in_cj).suspended

    await eventually(suspended_in_cj, what="CJ's suspension")
    status, body = await harness.connect(shared_cert, in_cj, key_cj)
    assert status == 401 and body["reason"] == "certificate_suspended"
    assert (await harness.connect(shared_cert, in_b, key_b))[0] == 200
    # OCSP: good while one house has it registered and not suspended.
    answer = registry.certificate(ca.issuer_id, shared_cert.serial)
    assert answer.status == "good" and not answer.suspended and answer.username == in_b
