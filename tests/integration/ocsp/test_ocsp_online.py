"""The providers' online channel (:8443) over real TLS, fed by real events on the bus:
who gets "online", and why everyone else is told "offline"."""
from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from services.ocsp.online.consumers import on_key_issued, on_user_created
from shared.clock import utc_now
from shared.db import POOL
from shared.events import (
    CertificateReinstated, CertificateRevoked, CertificateSuspended, Envelope, ExternalUserCreated,
    ExternalUserDeleted, new_envelope,
)
from tests.support import infra
from shared.inbox import handle_once
from tests.support.identities import new_cui
from tests.support.keygen_api import key_issued
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness, Provider
from tests.support.pki import Issued, TestPki
from tests.support.wait import eventually


@pytest.fixture(scope="module")
def world() -> TestPki:
    """A test PKI of this module's own (the ocsp service takes a CA under one issuer id only)."""
    return TestPki(utc_now().replace(microsecond=0), label=f"online {uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
async def ca(harness: Harness, world):
    """The world's issuing CA, registered; its root is not."""
    return await harness.register_issuer(Issuer(world.issuing))


async def enrol(harness: Harness, ca, *, house: str = "B", certificate: Issued | None = None):
    """A provider as a county house leaves it: key issued, certificate (a new one of
    ``ca`` unless given) registered."""
    cui = new_cui()
    username = f"{cui}_CAS-{house}"
    provider = Provider.of(certificate, harness.directory) if certificate else harness.provider(ca, cui)
    certificate_id = await harness.publish_certificate(ca, provider, username)
    await registered(harness.app, ca, provider.serial)
    serial = await harness.issue_key(username)
    return username, provider, serial, certificate_id


async def log_entries(harness: Harness, username: str, auth_for) -> list[dict]:
    response = await harness.client.get("/v1/log", params={"username": username},
                                        headers=auth_for(cas="CNAS", username="admin"))
    assert response.status == 200
    return (await response.json())["items"]


async def test_a_registered_certificate_with_the_current_key_goes_online(harness, ca, auth_for):
    username, provider, serial, certificate_id = await enrol(harness, ca)
    status, body = await harness.connect(provider, username, serial)
    assert status == 200
    assert body["semaphore"] == "online" and body["username"] == username and body["cas"] == "B"
    assert body["session_token"] and datetime.fromisoformat(body["expires_at"]) > datetime.now(timezone.utc)
    assert "online" in body["message"].lower() and username in body["message"]

    async def logged():
        return [e for e in await log_entries(harness, username, auth_for) if e["status"] == "online"]

    entry = (await eventually(logged, what="connect in the OCSP log"))[0]
    assert entry["operation"] == "connect" and entry["cas"] == "B"
    assert entry["serial"] == str(provider.serial) and entry["certificate_id"] == certificate_id
    assert entry["issuer_id"] == ca.issuer_id and entry["client"] == "127.0.0.1"


async def test_the_desktop_accepts_the_serial_as_typed(harness, ca):
    username, provider, serial, _ = await enrol(harness, ca)
    status, _ = await harness.connect(provider, username, serial.lower().replace("-", " "))
    assert status == 200


async def refused(harness, provider, username, serial, reason, **kw):
    status, body = await harness.connect(provider, username, serial, **kw)
    assert (status, body.get("semaphore"), body.get("reason")) == (401, "offline", reason), body
    assert body["message"] and body["detail"] == body["message"]
    return body


async def test_no_certificate(harness, ca):
    username, _, serial, _ = await enrol(harness, ca)
    body = await refused(harness, None, username, serial, "certificate_missing")
    assert "certificat" in body["message"]


async def test_no_credentials(harness, ca):
    _, provider, _, _ = await enrol(harness, ca)
    await refused(harness, provider, None, None, "credentials_missing")


async def test_unknown_user(harness, ca):
    _, provider, serial, _ = await enrol(harness, ca)
    await refused(harness, provider, f"{new_cui()}_CAS-B", serial, "unknown_user")


async def test_certificate_not_registered(harness, ca):
    username, _, serial, _ = await enrol(harness, ca)
    stray = harness.provider(ca, "stray")
    body = await refused(harness, stray, username, serial, "certificate_not_registered")
    assert format(stray.serial, "X") in body["message"]


async def test_certificate_of_another_user(harness, ca):
    username, _, serial, _ = await enrol(harness, ca)
    _, other_provider, _, _ = await enrol(harness, ca)
    await refused(harness, other_provider, username, serial, "certificate_other_user")


async def test_wrong_key_and_typo(harness, ca):
    username, provider, serial, _ = await enrol(harness, ca)
    _, _, someone_elses, _ = await enrol(harness, ca)
    await refused(harness, provider, username, someone_elses, "wrong_key")
    typo = serial[:-1] + ("0" if serial[-1] != "0" else "1")
    body = await refused(harness, provider, username, typo, "key_malformed")
    assert "greșeală" in body["message"]


async def test_expired_and_not_yet_valid_certificates_get_a_reason_not_a_tls_error(harness, ca, world):
    username, provider, serial, _ = await enrol(harness, ca, certificate=world.expired)
    body = await refused(harness, provider, username, serial, "certificate_expired")
    assert world.expired.cert.not_valid_after_utc.date().isoformat() in body["message"]
    username, provider, serial, _ = await enrol(harness, ca, certificate=world.not_yet_valid)
    await refused(harness, provider, username, serial, "certificate_not_yet_valid")


async def test_messages_in_english_on_request(harness, ca):
    username, provider, serial, _ = await enrol(harness, ca)
    body = await refused(harness, provider, username, "AAAAA-AAAA-AAAA-AAAA", "key_malformed",
                         language="en-GB,en;q=0.9,ro;q=0.5")
    assert body["message"].startswith("The licence serial has a typo")
    status, body = await harness.connect(provider, username, serial, language="en")
    assert status == 200 and body["message"].startswith("Online with SIUI")


async def test_suspension_revocation_and_heartbeat(harness, ca):
    username, provider, serial, certificate_id = await enrol(harness, ca)
    status, body = await harness.connect(provider, username, serial)
    assert status == 200
    token = body["session_token"]
    status, beat = await harness.online("/v1/online/heartbeat", provider, token=token)
    assert status == 200 and beat["semaphore"] == "online" and beat["session_token"]

    # Suspendat: the next connect and the next heartbeat both say so.
    await harness.publish_certificate(ca, provider, username, status="suspended", event=CertificateSuspended,
                                      certificate_id=certificate_id)
    await registered(harness.app, ca, provider.serial, status="suspended")
    await refused(harness, provider, username, serial, "certificate_suspended")
    status, beat = await harness.online("/v1/online/heartbeat", provider, token=token)
    assert (status, beat["reason"]) == (401, "certificate_suspended")

    await harness.publish_certificate(ca, provider, username, status="active", event=CertificateReinstated,
                                      certificate_id=certificate_id)
    await registered(harness.app, ca, provider.serial, status="good")
    status, _ = await harness.online("/v1/online/heartbeat", provider, token=token)
    assert status == 200

    await harness.publish_certificate(ca, provider, username, status="revoked", event=CertificateRevoked,
                                      certificate_id=certificate_id)
    await registered(harness.app, ca, provider.serial, status="revoked")
    await refused(harness, provider, username, serial, "certificate_revoked")


async def test_a_session_belongs_to_its_certificate(harness, ca):
    username, provider, serial, _ = await enrol(harness, ca)
    _, body = await harness.connect(provider, username, serial)
    _, other, other_serial, _ = await enrol(harness, ca)
    status, beat = await harness.online("/v1/online/heartbeat", other, token=body["session_token"])
    assert (status, beat["reason"]) == (401, "session_invalid")
    status, beat = await harness.online("/v1/online/heartbeat", provider, token=body["session_token"][:-3] + "AAA")
    assert (status, beat["reason"]) == (401, "session_invalid")


async def test_a_reset_kills_the_old_key_at_once(harness, ca):
    username, provider, old_serial, _ = await enrol(harness, ca)
    status, body = await harness.connect(provider, username, old_serial)
    assert status == 200
    published = time.monotonic()
    new_serial = await harness.issue_key(username, reset=True, wait=False)

    async def old_key_dead():
        status, body = await harness.connect(provider, username, old_serial)
        return status == 401 and body["reason"] == "key_replaced"

    await eventually(old_key_dead, timeout=2, interval=0.02, what="old key refused")
    print(f"old key refused {1000 * (time.monotonic() - published):.0f} ms after the reset was published")
    status, beat = await harness.online("/v1/online/heartbeat", provider, token=body["session_token"])
    assert (status, beat["reason"]) == (401, "key_replaced")
    assert (await harness.connect(provider, username, new_serial))[0] == 200
    # A key event that arrives late, older than the reset, only joins the replaced keys.
    late = await harness.issue_key(username, issued_at=datetime.now(timezone.utc) - timedelta(days=1),
                                   wait=False)

    async def late_key_seen_as_replaced():
        status, body = await harness.connect(provider, username, late)
        return status == 401 and body["reason"] == "key_replaced"

    await eventually(late_key_seen_as_replaced, what="late key event applied")
    assert (await harness.connect(provider, username, new_serial))[0] == 200


async def test_a_deleted_external_user_is_unknown(harness, ca):
    username, provider, serial, _ = await enrol(harness, ca)
    await harness.publish(ExternalUserDeleted(username=username), "B")

    async def gone():
        status, body = await harness.connect(provider, username, serial)
        return status == 401 and body["reason"] == "unknown_user"

    await eventually(gone, what="deleted user refused")


async def test_an_issuer_registered_while_running_is_trusted_at_once(harness):
    fresh = await harness.register_issuer(Issuer.new(f"Late CA {uuid.uuid4().hex[:6]}"))
    username, provider, serial, _ = await enrol(harness, fresh)
    assert (await harness.connect(provider, username, serial))[0] == 200


async def test_a_registered_intermediate_ca_is_enough(harness, world):
    # A second intermediate under the world's root, which nobody registers.
    intermediate = await harness.register_issuer(Issuer.new(f"Sub CA {uuid.uuid4().hex[:6]}", parent=world.root))
    username, provider, serial, _ = await enrol(harness, intermediate)
    assert (await harness.connect(provider, username, serial))[0] == 200


async def test_a_certificate_from_an_unregistered_ca_fails_the_handshake(harness):
    stranger = Issuer.new("Stranger CA")
    provider = harness.provider(stranger, new_cui())
    with pytest.raises(aiohttp.ClientError):
        await harness.connect(provider, f"{new_cui()}_CAS-B", "x")


async def test_usage_is_published_once_per_interval_per_house(harness, ca, common_config):
    # A watcher's own queue: the broker's administrator's to declare, not a service's.
    connection = await aio_pika.connect(infra.admin_amqp_url())
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(common_config.events_exchange)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="ocsp.certificate_used")
        b_user, b_provider, b_serial, b_id = await enrol(harness, ca, house="B")
        cj_user, cj_provider, cj_serial, cj_id = await enrol(harness, ca, house="CJ")
        for _ in range(3):
            assert (await harness.connect(b_provider, b_user, b_serial))[0] == 200
        assert (await harness.connect(cj_provider, cj_user, cj_serial))[0] == 200
        await refused(harness, b_provider, b_user, cj_serial, "wrong_key")  # refusals are no use
        seen: dict[str, list] = {}

        async def both_houses():
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                assert message.user_id == "siui-ocsp"  # stamped with the publisher's broker user
                envelope = Envelope.from_json(message.body)
                seen.setdefault(envelope.cas, []).extend(envelope.data["usages"])
            return {b_id, cj_id} <= {u["certificate_id"] for usages in seen.values() for u in usages}

        await eventually(both_houses, timeout=15, what="CertificateUsed for both houses")
        assert [u["certificate_id"] for u in seen["B"]].count(b_id) == 1  # three connects, one usage
        assert cj_id in [u["certificate_id"] for u in seen["CJ"]]
    finally:
        await connection.close()


async def test_openapi_documents_the_channel(harness):
    doc = await (await harness.client.get("/openapi.json")).json()
    assert {"/v1/online/connect", "/v1/online/heartbeat", "/v1/log", "/v1/log/stream"} <= set(doc["paths"])
    json.dumps(doc)


async def test_key_and_user_events_handled_at_the_same_moment_keep_the_key(harness):
    """KeyIssued and ExternalUserCreated for a brand-new user, applied concurrently by two
    consumers: the key must survive (it once was overwritten with NULL)."""
    pool = harness.app[POOL]
    for _ in range(20):
        cui = new_cui()
        username = f"{cui}_CAS-B"
        event, key = key_issued(harness.pepper, username)
        issued = new_envelope(event, "B")
        created = new_envelope(ExternalUserCreated(username=username, cui=cui, provider_code=cui,
                                                   provider_name="SC X SRL", schema="SIUIB", org_unit="CAS-B"), "B")
        await asyncio.gather(handle_once(pool, issued, on_key_issued), handle_once(pool, created, on_user_created))
        digest = await pool.fetchval("select key_digest from external_user_keys where username = $1", username)
        assert digest == key.digest.hex()


# -- hardening: what one client could once make of the channel ----------------------------

async def cnas_log(harness: Harness, auth_for, **params) -> list[dict]:
    response = await harness.client.get("/v1/log", params={"limit": "500", **params},
                                        headers=auth_for(cas="CNAS", username="admin"))
    assert response.status == 200
    return (await response.json())["items"]


async def test_a_3_kb_user_name_is_refused_in_words_and_the_log_keeps_it_bounded(harness, ca, auth_for):
    username, provider, serial, _ = await enrol(harness, ca)
    status, body = await harness.connect(provider, "9" * 3000 + "_CAS-B", serial)
    assert (status, body["reason"]) == (401, "credentials_missing")

    async def logged():
        return [e for e in await cnas_log(harness, auth_for, serial=str(provider.serial))
                if e["detail"] == "credentials_missing"]

    (entry,) = await eventually(logged, what="the refusal in the log")
    assert entry["cas"] is None and entry["username"] is None  # nothing claimed is attributed


async def test_a_client_certificate_with_a_huge_serial_is_refused_in_words(harness, ca, tmp_path):
    username, _, serial, _ = await enrol(harness, ca)
    (tmp_path / "ca.pem").write_text(ca.pem)
    (tmp_path / "ca.key").write_bytes(ca.authority.key.private_bytes(serialization.Encoding.PEM,
                                                                     serialization.PrivateFormat.PKCS8,
                                                                     serialization.NoEncryption()))
    for args in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                  "huge.key", "-subj", f"/C=RO/CN={username.partition('_')[0]}", "-out", "huge.csr"],
                 ["x509", "-req", "-in", "huge.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30",
                  "-set_serial", "0x7" + "f" * 3999, "-out", "huge.pem"]):  # 2,000 octets: > 4,300 digits
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)
    huge = Provider(Issued(x509.load_pem_x509_certificate((tmp_path / "huge.pem").read_bytes()),
                           serialization.load_pem_private_key((tmp_path / "huge.key").read_bytes(), None)),
                    tmp_path / "huge.pem", tmp_path / "huge.key")
    status, body = await harness.connect(huge, username, serial)
    assert (status, body["reason"]) == (401, "certificate_not_registered")
    assert len(body["message"]) < 400  # the serial shown to the person is capped


async def test_an_attempt_without_a_certificate_is_not_put_in_a_house_log(harness, ca, auth_for):
    claimed = f"{new_cui()}_CAS-B"
    status, body = await harness.connect(None, claimed + "\r\n<b>x</b>", "ABCDE-1234-5678-9ABC")
    assert (status, body["reason"]) == (401, "certificate_missing")

    async def logged():
        return [e for e in await cnas_log(harness, auth_for) if claimed in (e["detail"] or "")]

    (entry,) = await eventually(logged, what="the attempt in the national log")
    assert entry["cas"] is None and entry["username"] is None
    assert entry["detail"] == f"certificate_missing; claimed {claimed}<b>x</b>"  # no CR/LF kept
    assert not [e for e in await cnas_log(harness, auth_for, cas="B") if claimed in (e["detail"] or "")]


async def test_a_certificate_of_an_unknown_authority_gets_a_tls_alert_and_is_counted(harness, auth_for):
    from services.ocsp.online.routes import TLS_REFUSED

    before = TLS_REFUSED.labels("certificate_untrusted")._value.get()
    stranger = Issuer.new(f"Stranger CA {uuid.uuid4().hex[:6]}")
    provider = harness.provider(stranger, new_cui())
    with pytest.raises(aiohttp.ClientError) as refused:
        await harness.connect(provider, f"{new_cui()}_CAS-B", "x")
    assert "UNKNOWN_CA" in repr(refused.value).upper()  # the alert, not a bare disconnect
    assert TLS_REFUSED.labels("certificate_untrusted")._value.get() == before + 1

    async def logged():
        return [e for e in await cnas_log(harness, auth_for) if e["detail"] == "tls:certificate_untrusted"]

    await eventually(logged, what="the refused handshake in the OCSP log")
