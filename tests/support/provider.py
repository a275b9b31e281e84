"""The provider's side of the stack for the desktop client's e2e tests: a provider of
house B with its own CUI and key (issued through keygen's API), a client certificate
from the demo issuing authority (registered through certs' API), suspension, and the
client's environment. Each test makes its own, so tests never share a provider."""
from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from stdnum.ro import cui as ro_cui

from shared.license import ALPHABET
from tests.support.wait import eventually

P12_PASSPHRASE = "parola-furnizor"


def fresh_cui() -> str:
    """A valid CUI other than the demo provider's: 8 digits, the last its check digit."""
    while True:
        base = str(random.randint(1_000_000, 9_999_999))
        cui = base + ro_cui.calc_check_digit(base)
        if cui != "12433636":
            return cui


def mint_certificate(pki, cui: str, name: str, directory: Path) -> dict[str, Path]:
    """A client certificate for the provider, issued by the demo issuing authority."""
    issuer = x509.load_pem_x509_certificate(pki.demo_issuer_cert.read_bytes())
    issuer_key = serialization.load_pem_private_key(pki.demo_issuer_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, cui)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
        .sign(issuer_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"cert": directory / "provider.pem", "key": directory / "provider.key",
             "p12": directory / "provider.p12"}
    paths["cert"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["p12"].write_bytes(pkcs12.serialize_key_and_certificates(
        name.encode(), key, certificate, [issuer],
        serialization.BestAvailableEncryption(P12_PASSPHRASE.encode())))
    for path in paths.values():
        path.chmod(0o600)
    return paths


async def new_provider_with_key(stack, http, admin_headers) -> tuple[str, str, str]:
    """A provider of house B (its own CUI) and its first key: (cui, provider id, serial)."""
    for _ in range(5):
        cui = fresh_cui()
        async with http.post(stack.url("keygen", "/v1/providers"), headers=admin_headers, json={
            "cas": "B", "cui": cui, "name": f"SC DESKTOP {cui} SRL", "trade_register_no": "J40/1/2020",
            "legal_representative": {"name": "Maria Ionescu", "cnp": "1800101221144"},
        }) as r:
            if r.status == 409:
                continue
            assert r.status == 201, await r.text()
            provider_id = (await r.json())["id"]
        return cui, provider_id, await issue_key(stack, http, admin_headers, provider_id, reset=False)
    raise AssertionError("no free CUI found")


async def issue_key(stack, http, admin_headers, provider_id: str, *, reset: bool) -> str:
    async with http.post(stack.url("keygen", f"/v1/providers/{provider_id}/activation-key"),
                         headers=admin_headers, json={"reset": reset}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["license_serial"]


async def register_certificate(stack, http, admin_headers, pki, username: str, cert_pem: str) -> str:
    async with http.post(stack.url("certs", "/v1/issuers"), headers=admin_headers,
                         json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
        assert r.status in (201, 409), await r.text()

    async def registered():
        async with http.post(stack.url("certs", "/v1/certificates"), headers=admin_headers,
                             json={"username": username, "certificate_pem": cert_pem}) as r:
            if r.status == 422:  # certs has not yet heard of the external user
                return None
            assert r.status == 201, await r.text()
            return (await r.json())["id"]

    return await eventually(registered, timeout=20, what="certificate registered")


async def set_suspended(stack, http, admin_headers, certificate_id: str, suspended: bool) -> None:
    async with http.patch(stack.url("certs", f"/v1/certificates/{certificate_id}"), headers=admin_headers,
                          json={"suspended": suspended}) as r:
        assert r.status == 200, await r.text()


def typo_of(serial: str) -> str:
    """The serial with one symbol mistyped (the check character catches it)."""
    i = 7
    return serial[:i] + ALPHABET[(ALPHABET.index(serial[i]) + 1) % len(ALPHABET)] + serial[i + 1:]


def client_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "NO_COLOR")}
    env.update({"SIIU_DESKTOP_HOME": str(home), "PYTHONIOENCODING": "utf-8", "TERM": "xterm"})
    return env
