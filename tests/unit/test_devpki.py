"""deploy.devpki: the dev PKI is complete, chains verify, and a second run changes nothing."""
from __future__ import annotations

import stat
import subprocess
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from deploy.devpki import DevPki, ensure_dev_pki, main

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> DevPki:
    return ensure_dev_pki(tmp_path_factory.mktemp("data"), now=NOW)


def _snapshot(paths: DevPki) -> dict[Path, tuple[bytes, int]]:
    """Every file under the data dir with its bytes and mtime."""
    return {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(paths.data_dir.rglob("*"))
        if p.is_file()
    }


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


def test_second_run_changes_nothing(tmp_path):
    first = ensure_dev_pki(tmp_path, now=NOW)
    before = _snapshot(first)
    second = ensure_dev_pki(tmp_path)
    assert second == first
    assert _snapshot(second) == before
    expected = {getattr(first, f.name) for f in fields(first)} - {first.data_dir}
    assert set(before) == expected  # exactly these files, no temporaries left behind


def test_modes(pki):
    for directory in (pki.data_dir, pki.data_dir / "pki", pki.data_dir / "secrets"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    secret_files = [
        pki.root_ca_key, pki.responder_key, pki.tls_server_key, pki.docsign_key,
        pki.demo_issuer_key, pki.demo_provider_key, pki.demo_provider_p12,
        pki.token_signing_key, pki.license_pepper, pki.data_key,
    ]
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_keys_are_unencrypted_pkcs8(pki):
    expected = {
        pki.root_ca_key: ec.EllipticCurvePrivateKey,
        pki.responder_key: ec.EllipticCurvePrivateKey,
        pki.tls_server_key: ec.EllipticCurvePrivateKey,
        pki.demo_issuer_key: ec.EllipticCurvePrivateKey,
        pki.demo_provider_key: ec.EllipticCurvePrivateKey,
        pki.docsign_key: rsa.RSAPrivateKey,
        pki.token_signing_key: ed25519.Ed25519PrivateKey,
    }
    for path, kind in expected.items():
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----"), path
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, kind), path
        if isinstance(key, ec.EllipticCurvePrivateKey):
            assert isinstance(key.curve, ec.SECP256R1)
    assert serialization.load_pem_private_key(pki.docsign_key.read_bytes(), None).key_size == 2048
    public = serialization.load_pem_public_key(pki.token_signing_public_key.read_bytes())
    token_key = serialization.load_pem_private_key(pki.token_signing_key.read_bytes(), None)
    assert public == token_key.public_key()


def test_secrets_are_32_random_bytes_in_hex(pki):
    pepper = pki.license_pepper.read_text()
    data_key = pki.data_key.read_text()
    assert len(bytes.fromhex(pepper)) == 32 and len(pepper) == 64
    assert len(bytes.fromhex(data_key)) == 32 and len(data_key) == 64
    assert pepper != data_key


def test_chains_verify_with_cryptography(pki):
    root, demo_ca = _cert(pki.root_ca_cert), _cert(pki.demo_issuer_cert)
    for leaf in (pki.responder_cert, pki.tls_server_cert, pki.docsign_cert):
        _cert(leaf).verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    demo_ca.verify_directly_issued_by(demo_ca)
    _cert(pki.demo_provider_cert).verify_directly_issued_by(demo_ca)
    for ca in (root, demo_ca):
        assert _ext(ca, x509.BasicConstraints).value.ca
        assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


@pytest.mark.parametrize(
    ("ca", "leaf", "purpose"),
    [
        ("root_ca_cert", "responder_cert", "ocsphelper"),
        ("root_ca_cert", "tls_server_cert", "sslserver"),
        ("root_ca_cert", "docsign_cert", "any"),
        ("demo_issuer_cert", "demo_provider_cert", "sslclient"),
    ],
)
def test_chains_verify_with_openssl(pki, ca, leaf, purpose):
    # -attime: the certificates start at NOW, which may be ahead of the real clock.
    at = str(int(NOW.timestamp()) + 60)
    run = subprocess.run(
        ["openssl", "verify", "-attime", at, "-purpose", purpose,
         "-CAfile", str(getattr(pki, ca)), str(getattr(pki, leaf))],
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith(": OK")


def test_responder_certificate(pki):
    cert = _cert(pki.responder_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "SIUI Access OCSP Responder"
    )
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    _ext(cert, x509.OCSPNoCheck)
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    assert not _ext(cert, x509.BasicConstraints).value.ca


def test_tls_server_certificate(pki):
    cert = _cert(pki.tls_server_cert)
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_docsign_certificate(pki):
    cert = _cert(pki.docsign_cert)
    assert cert.subject.rfc4514_string() == (
        "CN=SIUI Access Semnare Documente (dev),"
        "O=CASA NATIONALA DE ASIGURARI DE SANATATE,C=RO"
    )
    usage = _ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment


def test_demo_issuer_has_the_seeds_dn_in_order(pki):
    cert = _cert(pki.demo_issuer_cert)
    assert [(a.oid, a.value) for a in cert.subject] == [
        (NameOID.COUNTRY_NAME, "RO"),
        (NameOID.STATE_OR_PROVINCE_NAME, "ROMANIA"),
        (NameOID.LOCALITY_NAME, "BUCURESTI"),
        (NameOID.ORGANIZATION_NAME, "MINISTERUL SANATATII"),
        (NameOID.COMMON_NAME, "MSANATATII CA"),
    ]
    assert cert.issuer == cert.subject


def test_openssl_prints_the_seeds_issuer_dn(pki):
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-in", str(pki.demo_issuer_cert)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out.replace(" = ", "=") == (
        "subject=C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"
    )


def test_demo_provider_certificate_and_p12(pki):
    cert = _cert(pki.demo_provider_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "12433636"
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    assert 0 < cert.serial_number and (cert.serial_number.bit_length() + 8) // 8 == 16
    assert (cert.not_valid_after_utc - NOW).days == 365
    bundle = pkcs12.load_pkcs12(pki.demo_provider_p12.read_bytes(), b"demo")
    assert bundle.cert.certificate == cert
    assert [c.certificate for c in bundle.additional_certs] == [_cert(pki.demo_issuer_cert)]
    key = serialization.load_pem_private_key(pki.demo_provider_key.read_bytes(), None)
    assert bundle.key.public_key() == key.public_key()


def test_a_missing_certificate_is_reissued_for_its_existing_key(tmp_path):
    paths = ensure_dev_pki(tmp_path, now=NOW)
    old_key = paths.tls_server_key.read_bytes()
    paths.tls_server_cert.unlink()
    ensure_dev_pki(tmp_path, now=NOW)
    assert paths.tls_server_key.read_bytes() == old_key
    cert = _cert(paths.tls_server_cert)
    cert.verify_directly_issued_by(_cert(paths.root_ca_cert))
    key = serialization.load_pem_private_key(old_key, None)
    assert cert.public_key() == key.public_key()


def test_a_certificate_without_its_key_is_refused(tmp_path):
    paths = ensure_dev_pki(tmp_path, now=NOW)
    paths.docsign_key.unlink()
    with pytest.raises(FileExistsError, match="docsign"):
        ensure_dev_pki(tmp_path, now=NOW)


def test_cli_prints_the_paths(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "d")]) == 0
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert Path(lines["root_ca_cert"]).is_file()
    assert lines["data_dir"] == str((tmp_path / "d").resolve())
