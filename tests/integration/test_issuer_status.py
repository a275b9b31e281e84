"""Both truths in one answer (issue 16), with real parts end to end: a test CA publishing
its CRL over HTTP (signed with its own key by ``cryptography``), the certs app fetching
it in the background, its event crossing the real broker to the ocsp app, the real
``openssl ocsp`` client asking our responder, and the online channel over mutual TLS."""
from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timezone

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509

from clients.desktop.activation import Activation
from clients.desktop.online import OnlineChannel
from services.certs.app import create_app as create_certs
from services.certs.config import Config as CertsConfig
from services.ocsp.app import create_app as create_ocsp
from services.ocsp.config import Config as OcspConfig
from shared.license import load_pepper
from tests.support import infra
from tests.support.bus import tapped
from tests.support.certs_api import add_external_user, register_issuer, register_upload, unique
from tests.support.crl_authority import CrlAuthority
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer, registered
from tests.support.ocsp_online import Harness, Provider
from tests.support.wait import eventually


def certs_config(common_config, **kw) -> CertsConfig:
    # Loopback allowed, as make up allows it; short intervals so a test sees several rounds.
    settings = dict(crl_allow_loopback=True, crl_tick_seconds=0.2, crl_min_interval_seconds=0.5,
                    crl_retry_seconds=0.5, crl_max_bytes=1024 * 1024, crl_timeout_seconds=5.0)
    settings.update(kw)
    return CertsConfig(common=common_config, port=0, **settings)


@pytest.fixture(scope="module")
async def ocsp(common_config, pki, feed, tmp_path_factory):
    """The ocsp app with its :8443 channel, fed by the certs app below through the broker."""
    config = OcspConfig(common=common_config, port=0, tls_port=0, workers=1)
    async with TestClient(TestServer(create_ocsp(config))) as client:
        yield Harness(client, feed, load_pepper(pki.license_pepper), pki.root_ca_cert,
                      tmp_path_factory.mktemp("issuer-status"))


@pytest.fixture
async def certs(aiohttp_client, common_config):
    return await aiohttp_client(create_certs(certs_config(common_config)))


@pytest.fixture
async def bus(common_config):
    async with tapped(common_config.events_exchange, "certs.#") as tap:
        yield tap


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "certs"})
    yield conn
    await conn.close()


async def _openssl_ocsp(*args) -> str:
    process = await asyncio.create_subprocess_exec("openssl", "ocsp", *map(str, args), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return out.decode()


async def test_a_certificate_its_issuer_revokes_is_revoked_everywhere(certs, ocsp, bus, db, auth_for, pki,
                                                                      tmp_path):
    national, operator = auth_for(cas="CNAS", username="admin"), auth_for(cas="B", username="ana.operator")
    async with CrlAuthority.new(unique("CRL Test CA ")).served() as ca:
        issuer = await register_issuer(certs, ca.authority, national)
        known = Issuer(ca.authority, issuer_id=issuer["id"])
        cui = new_cui()
        username = await add_external_user(bus, db, cui=cui)
        leaf = Provider.of(known.issue(cui, crl_url=ca.url), tmp_path)
        certificate = await register_upload(certs, username, leaf.issued, operator)
        assert certificate["issuer_status"] in ("unknown", "good")
        serial = await ocsp.issue_key(username)
        await registered(ocsp.app, known, leaf.serial)

        # Before: the CRL lists nothing of ours. Fetched from the certificate's CRLDP alone.
        async def checked():
            body = await (await certs.get(f"/v1/certificates/{certificate['id']}", headers=operator)).json()
            return body if body["issuer_status"] == "good" else None

        assert (await certs.post(f"/v1/issuers/{issuer['id']}/refresh-status", headers=national)).status == 202
        await eventually(checked, what="issuer status good")
        status, body = await ocsp.connect(leaf, username, serial)
        assert status == 200 and body["semaphore"] == "online", body

        # The CA revokes it; CNAS asks for a refresh.
        revoked_at = ca.revoke(leaf.serial, x509.ReasonFlags.key_compromise)
        downloads = ca.downloads
        refresh = await certs.post(f"/v1/issuers/{issuer['id']}/refresh-status", headers=national)
        assert refresh.status == 202, await refresh.text()
        assert (await refresh.json())["sources"] == [ca.url]

        async def revoked():
            body = await (await certs.get(f"/v1/certificates/{certificate['id']}", headers=operator)).json()
            return body if body["issuer_status"] == "revoked" else None

        # A fetch round, the CRL read and the event: seconds on a loaded machine (seen past 10 s).
        detail = await eventually(revoked, timeout=30, what="certificate revoked by its issuer")
        assert ca.downloads > downloads
        assert detail["status"] == "active" and detail["suspended"] is False  # SIUI's own state, untouched
        assert detail["issuer_revoked_at"] == revoked_at.isoformat()
        assert detail["issuer_revocation_reason"] == "key_compromise"
        assert [h["action"] for h in detail["history"]] == ["registered", "revoked_by_issuer"]
        event = await bus.one("certs.certificate_revoked_by_issuer", certificate_id=certificate["id"])
        assert event.type == "CertificateRevokedByIssuer" and event.cas == "B"
        assert event.data["issuer_revoked_at"] == revoked_at.isoformat()
        audit = await (await certs.get("/v1/audit?actor=siui-crl-fetcher", headers=national)).json()
        assert any(e["target_id"] == certificate["id"] and e["action"] == "revoked_by_issuer"
                   for e in audit["items"]), audit

        # The issuer's freshness, in the API and the metric.
        shown = await (await certs.get(f"/v1/issuers/{issuer['id']}", headers=national)).json()
        assert shown["status_error"] is None and shown["crl_url"] == ca.url
        assert shown["crl_this_update"] and shown["crl_next_update"] and shown["status_checked_at"]
        cn = ca.authority.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        metrics = await (await certs.get("/metrics", headers=infra.metrics_headers(pki.data_dir))).text()
        assert re.search(rf'siui_issuer_crl_next_update_seconds{{issuer="{re.escape(cn)}"}} \d', metrics), metrics

        # The responder: revoked, with the issuer's time and reason, to the real openssl client.
        await registered(ocsp.app, known, leaf.serial, status="revoked")
        ca_pem = ca.authority.write(tmp_path, "ca")[0]
        out = await _openssl_ocsp("-issuer", ca_pem, "-cert", leaf.cert_path, "-url", ocsp.client.make_url("/"),
                                  "-VAfile", pki.responder_cert)
        assert "Response verify OK" in out, out
        assert f"{leaf.cert_path}: revoked" in out and "Reason: keyCompromise" in out, out
        assert "Revocation Time: " + revoked_at.astimezone(timezone.utc).strftime("%b %e %H:%M:%S %Y GMT") in out, out

        # The online channel: offline, saying who revoked it and when.
        status, body = await ocsp.connect(leaf, username, serial)
        assert (status, body["semaphore"], body["reason"]) == (401, "offline", "revoked_by_issuer"), body
        assert f"Certificatul a fost revocat de emitent ({cn}) la {revoked_at.strftime('%Y-%m-%d %H:%M')}" \
            in body["message"], body

        # The provider's desktop client itself (its online channel code, real TLS): offline.
        activation = Activation(username, "B", cui, "SC TEST MEDICAL SRL", serial, revoked_at.isoformat())
        channel = OnlineChannel(ocsp.online_url, ocsp.tls(leaf), activation=lambda: activation)
        desktop = await asyncio.to_thread(channel.connect)  # blocking client; the server runs on this loop
        assert (desktop.online, desktop.reason) == (False, "revoked_by_issuer"), desktop
        assert f"revocat de emitent ({cn})" in desktop.message

        # A house may suspend it, but not reinstate what its issuer revoked.
        path = f"/v1/certificates/{certificate['id']}"
        assert (await certs.patch(path, json={"suspended": True}, headers=operator)).status == 200
        refused = await certs.patch(path, json={"suspended": False}, headers=operator)
        assert refused.status == 409 and refused.content_type == "application/problem+json"
        assert "issuing authority" in (await refused.json())["detail"]
        # The suspension's event carries the issuer's revocation on: ocsp still says keyCompromise.
        await bus.one("certs.certificate_suspended", certificate_id=certificate["id"])
        out = await _openssl_ocsp("-issuer", ca_pem, "-cert", leaf.cert_path, "-url", ocsp.client.make_url("/"),
                                  "-VAfile", pki.responder_cert)
        assert "Reason: keyCompromise" in out, out

        # Another download of the same CRL changes nothing and publishes nothing more.
        downloads = ca.downloads
        assert (await certs.post(f"/v1/issuers/{issuer['id']}/refresh-status", headers=national)).status == 202
        async def downloaded_again():
            return ca.downloads > downloads

        await eventually(downloaded_again, what="another download")
        await eventually(_checked_after(certs, issuer["id"], national, shown["status_checked_at"]),
                         what="another check recorded")
        assert len(bus.events("certs.certificate_revoked_by_issuer", certificate_id=certificate["id"])) == 1


def _checked_after(certs, issuer_id, headers, before):
    async def check():
        body = await (await certs.get(f"/v1/issuers/{issuer_id}", headers=headers)).json()
        return body["status_checked_at"] != before
    return check


async def _issuer_with_source(certs, headers, ca) -> dict:
    issuer = await register_issuer(certs, ca.authority, headers)
    await _set_source(certs, headers, issuer, ca)
    return issuer


async def _set_source(certs, headers, issuer, ca) -> None:
    patched = await certs.patch(f"/v1/issuers/{issuer['id']}", json={"crl_urls": [ca.url]}, headers=headers)
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["crl_urls"] == [ca.url]


async def _error_of(certs, issuer_id, headers, contains: str) -> dict:
    async def failed():
        body = await (await certs.get(f"/v1/issuers/{issuer_id}", headers=headers)).json()
        return body if body["status_error"] and contains in body["status_error"] else None

    return await eventually(failed, what=f"status_error with {contains!r}")


@pytest.mark.parametrize("mode, says", [
    ("forged", "signature does not verify"),
    ("broken", "not a CRL"),
    ("huge", "more than"),
    ("missing", "HTTP 404"),
])
async def test_a_bad_source_is_reported_not_believed(certs, bus, db, auth_for, mode, says):
    national = auth_for(cas="CNAS", username="admin")
    async with CrlAuthority.new(unique("Bad CRL CA ")).served() as ca:
        issuer = await register_issuer(certs, ca.authority, national)
        cui = new_cui()
        username = await add_external_user(bus, db, cui=cui)
        leaf = Issuer(ca.authority, issuer_id=issuer["id"]).issue(cui)
        certificate = await register_upload(certs, username, leaf, auth_for(cas="B"))
        ca.revoke(leaf.serial)
        ca.mode = mode
        await _set_source(certs, national, issuer, ca)
        shown = await _error_of(certs, issuer["id"], national, says)
        assert shown["crl_this_update"] is None and shown["status_checked_at"]
        body = await (await certs.get(f"/v1/certificates/{certificate['id']}", headers=national)).json()
        assert body["issuer_status"] == "unknown" and body["issuer_revoked_at"] is None
        # The fetcher goes on: once the CA serves a good CRL again, it is read.
        ca.mode = "crl"

        async def read():
            body = await (await certs.get(f"/v1/certificates/{certificate['id']}", headers=national)).json()
            return body["issuer_status"] == "revoked"

        await eventually(read, what="the good CRL read after the bad one")


async def test_a_source_outside_the_bounds_is_never_asked(aiohttp_client, common_config, bus, db, auth_for):
    # Production's set-up: loopback not allowed, so a CRL URL pointing at this host is refused
    # before any connection is made.
    certs = await aiohttp_client(create_certs(certs_config(common_config, crl_allow_loopback=False)))
    national = auth_for(cas="CNAS", username="admin")
    async with CrlAuthority.new(unique("Loopback CRL CA ")).served() as ca:
        issuer = await _issuer_with_source(certs, national, ca)
        await _error_of(certs, issuer["id"], national, "not an address a CRL may be fetched from")
        assert ca.downloads == 0
        localhost = ca.url.replace("127.0.0.1", "localhost")
        assert (await certs.patch(f"/v1/issuers/{issuer['id']}", json={"crl_urls": [localhost]},
                                  headers=national)).status == 200
        await _error_of(certs, issuer["id"], national, "resolves to no address")
        assert ca.downloads == 0


async def test_crl_urls_and_refresh_are_checked(certs, auth_for):
    national, county = auth_for(cas="CNAS", username="admin"), auth_for(cas="B")
    ca = CrlAuthority.new(unique("Checked CRL CA "))
    issuer = await register_issuer(certs, ca.authority, national)
    path = f"/v1/issuers/{issuer['id']}"
    for bad in (["ldap://ldap.example.ro/cn=crl"], ["ftp://x.ro/a.crl"], ["http://"], ["http://u:p@x.ro/a.crl"],
                ["http://x.ro/" + "a" * 2100], [f"http://x{i}.ro/a.crl" for i in range(11)], "http://x.ro/a.crl",
                [17]):
        response = await certs.patch(path, json={"crl_urls": bad}, headers=national)
        assert response.status == 422, (bad, await response.text())
        assert response.content_type == "application/problem+json"
    assert (await certs.patch(path, json={"crl_urls": ["http://crl.example.ro/a.crl"]}, headers=county)).status == 403
    assert (await certs.post(f"{path}/refresh-status", headers=county)).status == 403
    assert (await certs.post(f"/v1/issuers/{uuid.uuid4()}/refresh-status", headers=national)).status == 404
    # No source at all: nothing to refresh from.
    assert (await certs.post(f"{path}/refresh-status", headers=national)).status == 409
