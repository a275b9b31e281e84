"""The speed-ups of the agreement: Latin font subsets (cached, with a fallback to the full
fonts) and a signer that parses its key once, for RSA and ECDSA alike."""
from __future__ import annotations

import asyncio
import io
import subprocess
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from services.keygen.agreement import (DEFAULT_FONTS, AgreementData, PreloadedKeySigner,
                                       load_signer, render_agreement, signed_agreement)
from services.keygen.fonts import LATIN, FontChoice, fonts_for, latin_subset
from shared import license

DATA = AgreementData(house="HR", provider_name="Szőcs Ildikó CMI Miercurea Ciuc", cui="12433636",
                     trade_register_no="J19/12/2011", representative_name="Szőcs Ildikó",
                     representative_cnp="2800101190016", license_serial=license.generate(),
                     date=date(2026, 3, 2))


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> FontChoice:
    return latin_subset(DEFAULT_FONTS, tmp_path_factory.mktemp("fonts"))


def test_the_subset_is_small_cached_and_named_after_its_source(subset, tmp_path):
    for path, source in ((subset.paths.regular, DEFAULT_FONTS.regular), (subset.paths.bold, DEFAULT_FONTS.bold)):
        assert Path(path).stat().st_size < Path(source).stat().st_size / 3
        assert Path(path).name.startswith(Path(source).stem + "-latin-")
    again = latin_subset(DEFAULT_FONTS, Path(subset.paths.regular).parent)
    assert again == subset
    assert not list(Path(subset.paths.regular).parent.glob(".*.tmp"))


def test_romanian_and_hungarian_names_use_the_subset_greek_falls_back(subset):
    choices = (subset, FontChoice(DEFAULT_FONTS))
    assert {ord(c) for c in "ăâîșțĂÂÎȘȚőűß„”–"} <= LATIN
    assert fonts_for(DATA, choices) == subset.paths
    greek = replace(DATA, provider_name="Ιατρείο Παπαδόπουλος SRL")
    assert fonts_for(greek, choices) == DEFAULT_FONTS


def test_text_and_fonts_survive_the_subset(subset, tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(render_agreement(DATA, fonts=subset.paths))
    text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True,
                                   text=True, timeout=60).stdout.split())
    for expected in ("Szőcs Ildikó CMI Miercurea Ciuc", "Casa de Asigurări de Sănătate Harghita",
                     f"Serie de licență: {DATA.license_serial}", "Semnătura"):
        assert expected in text, expected
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, timeout=60).stdout
    assert "DejaVuSans-Bold" in fonts or "DejaVuSansBold" in fonts
    assert "DejaVuSansBook" in fonts or "DejaVuSans " in fonts


def _ec_pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    now = datetime.now(timezone.utc)
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # noqa: E731
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Test CA")).issuer_name(name("Test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("CAS HR semnare")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _validate(pdf: bytes, root: Path):
    [sig] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(root))])
    return asyncio.run(async_validate_pdf_signature(sig, context))


def test_an_ecdsa_house_certificate_signs_through_the_preloaded_key(tmp_path, subset):
    ca, cert, key = _ec_pki(tmp_path)
    signer = load_signer(cert, key)
    assert isinstance(signer, PreloadedKeySigner)
    status = _validate(signed_agreement(DATA, signer, fonts=subset.paths), ca)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
