"""Issue 15 as people live it, on the running stack: a provider's certificate is
registered in house B and its desktop works online; the qualified provider renews it (the
same test CA, the same holder, a new serial); the desktop connects with the renewal and
is told it waits for the house's approval (not that it is unknown); a B operator sees it
under "Reînnoiri în așteptare" in the console, both certificates side by side, and
approves it with one click in Chromium; the desktop goes online with the new certificate;
the old one still answers good over OCSP until the house retires it; another renewal the
operator rejects shows the provider the reason; and the provider's user in a second
house (CJ) has the same certificate registered too (201, not 409).
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from playwright.sync_api import expect

from tests.support.browser import Visit, shot, until
from tests.support.pki import client, demo_issuer
from tests.support.provider import client_env, fresh_cui
from tests.support.stack_sync import PASSWORD, as_admin, create_staff, openssl_ocsp_of, responder_pem

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "operator.reinnoiri.b"


def run_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clients.desktop", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)


def provider_in(stack, cas: str, cui: str) -> str:
    """The provider in house ``cas`` with its first key: the licence serial."""
    status, body = as_admin(stack, "keygen", "/v1/providers", {
        "cas": cas, "cui": cui, "name": f"SC REINNOIRE {cui} SRL", "trade_register_no": "J40/7/2021",
        "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"}})
    assert status == 201, body
    status, key = as_admin(stack, "keygen", f"/v1/providers/{body['id']}/activation-key", {"reset": False})
    assert status == 201, key
    return key["license_serial"]


def register(stack, username: str, pem: str) -> dict:
    """Register through certs' API once certs has heard of the user (KeyIssued → users → certs)."""
    answers = []

    def registered():
        answers.append(as_admin(stack, "certs", "/v1/certificates", {"username": username, "certificate_pem": pem}))
        return answers[-1][0] == 201 and answers[-1][1]

    try:
        return until(registered, timeout=20, what=f"certificate registered for {username}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {answers[-1]}") from None


def test_a_renewed_certificate_never_cuts_the_provider_off(stack, pki, chromium, tmp_path):
    ca = demo_issuer(pki)
    as_admin(stack, "certs", "/v1/issuers", {"certificate_pem": pki.demo_issuer_cert.read_text()})  # 201 or 409
    cui = fresh_cui()
    username = f"{cui}_CAS-B"
    serial = provider_in(stack, "B", cui)
    holder = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"SC REINNOIRE {cui} SRL"),
                        x509.NameAttribute(NameOID.COMMON_NAME, cui)])
    now = datetime.now(timezone.utc)
    old_cert, _ = (old := client(ca, holder, now=now, days=20)).write(tmp_path, "old")
    new_cert, _ = (new := client(ca, holder, now=now, days=730)).write(tmp_path, "new")
    assert old.serial != new.serial
    old_record = register(stack, username, old.pem)

    env = client_env(tmp_path / "home")
    activated = run_client(env, "activate", "--serial", serial, "--cas", "b", "--server", stack.url("keygen"))
    assert activated.returncode == 0, activated.stdout + activated.stderr
    online = ["--server", f"https://127.0.0.1:{stack.ports['ocsp_tls']}", "--ca", str(pki.root_ca_cert)]

    def connect(stem: str) -> subprocess.CompletedProcess:
        return run_client(env, "connect", "--once", "--cert", str(tmp_path / f"{stem}.pem"),
                          "--key", str(tmp_path / f"{stem}.key"), *online)

    until(lambda: connect("old").returncode == 0, timeout=20, interval=0.5, what="online with the old certificate")

    # -- the renewal, presented: it waits for the house, in plain Romanian --------------------
    pending = connect("new")
    assert pending.returncode == 1, pending.stdout
    assert "● offline" in pending.stdout and "așteaptă aprobarea casei de asigurări" in pending.stdout, pending.stdout
    assert "nu este înregistrat" not in pending.stdout
    english = run_client({**env, "LANG": "en_GB.UTF-8"}, "--lang", "en", "connect", "--once", "--cert",
                         str(new_cert), "--key", str(tmp_path / "new.key"), *online)
    assert "awaits your insurance house's approval" in english.stdout, english.stdout

    # -- a B operator approves it in the console ------------------------------------------------
    create_staff(stack, OPERATOR, "B", "house-operator")
    visit = Visit(chromium, stack)
    page = visit.login(OPERATOR, PASSWORD)
    renewal = page.locator("article.renewal", has_text=username)

    def listed():
        page.goto("/certificate")
        return renewal.count() == 1

    until(listed, what="the renewal under Reînnoiri în așteptare (RenewalPresented → certs)")
    expect(page.locator("#reinnoiri-titlu")).to_have_text("Reînnoiri în așteptare")
    expect(renewal.locator("table.side-by-side")).to_contain_text(str(old.serial))
    expect(renewal.locator("table.side-by-side")).to_contain_text(str(new.serial))
    shot(page, "reinnoiri-in-asteptare")
    renewal.get_by_role("button", name="Aprobă", exact=True).click()
    expect(page.locator(".notice.ok")).to_contain_text("Reinnoirea a fost aprobata")
    expect(page.locator("main")).to_contain_text(str(new.serial))
    shot(page, "reinnoire-aprobata")

    # -- the desktop goes online with the new certificate; the old one still answers good ------
    until(lambda: connect("new").returncode == 0, timeout=20, interval=0.5, what="online with the renewal")
    assert connect("old").returncode == 0
    responder = responder_pem(stack, tmp_path)
    issuer_pem = Path(pki.demo_issuer_cert)
    assert ": good" in openssl_ocsp_of(stack, issuer_pem, old_cert, responder)

    def new_is_good():
        return ": good" in openssl_ocsp_of(stack, issuer_pem, new_cert, responder)

    until(new_is_good, what="OCSP good for the renewal")
    # ... until the house retires it.
    status, body = as_admin(stack, "certs", f"/v1/certificates/{old_record['id']}/revoke", {"reason": "superseded"})
    assert status == 200, body
    until(lambda: "Reason: superseded" in openssl_ocsp_of(stack, issuer_pem, old_cert, responder),
          what="OCSP revoked (superseded) for the retired certificate")

    # -- another renewal the house refuses: the provider reads why --------------------------------
    other_cert, _ = (other := client(ca, holder, now=now, days=365)).write(tmp_path, "other")
    assert connect("other").returncode == 1
    refused_renewal = page.locator("article.renewal", has_text=str(other.serial))

    def other_listed():
        page.goto("/certificate")
        return refused_renewal.count() == 1

    until(other_listed, what="the second renewal listed")
    refused_renewal.get_by_label("Motivul respingerii (il vede furnizorul)").fill(
        "Certificatul nu este al reprezentantului legal")
    refused_renewal.get_by_role("button", name="Respinge", exact=True).click()
    expect(page.locator(".notice.ok")).to_contain_text("Reinnoirea a fost respinsa")
    expect(page.locator("article.renewal", has_text=str(other.serial))).to_have_count(0)
    shot(page, "reinnoire-respinsa")
    assert not visit.csp_violations(), visit.problems
    visit.close()

    def told_why():
        out = connect("other").stdout
        return "a respins certificatul nou" in out and "nu este al reprezentantului legal" in out and out

    until(told_why, interval=0.5, what="the desktop shows the rejection and its reason")

    # -- a second house registers the same certificate for the same provider --------------------
    provider_in(stack, "CJ", cui)
    in_cj = register(stack, f"{cui}_CAS-CJ", new.pem)
    assert in_cj["cas"] == "CJ" and in_cj["serial"] == str(new.serial)
    assert ": good" in openssl_ocsp_of(stack, issuer_pem, new_cert, responder)
