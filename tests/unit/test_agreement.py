"""The agreement PDF: its text, fonts and metadata, and its PAdES signature as pyHanko
and poppler's pdfsig see it. Needs poppler-utils (pdftotext, pdftohtml, pdfsig); the
NSS trust check needs libnss3-tools (certutil) and is skipped without it."""

from __future__ import annotations

import asyncio
import copy
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from shared import license
from services.keygen.agreement import (
    DEFAULT_FONTS,
    SIGNATURE_FIELD,
    AgreementData,
    FontPaths,
    async_sign_pdf,
    load_signer,
    UnprintableText,
    render_agreement,
    sign_pdf,
)

SERIAL = "F8E73-MVXY-FYKQ-9TGK"  # the seed's look, with a valid check character


def _serial() -> str:
    body = SERIAL.replace("-", "")[:16]
    return license.normalize(body + license.check_symbol(body))


DATA = AgreementData(
    house="GJ",
    provider_name="CMI Noiembrie Țărănescu",
    cui="221120108",
    trade_register_no="J40/10/3456",
    representative_name="GHEORGHE-FLORIN POPA",
    representative_cnp="1760412010316",
    license_serial=_serial(),
    date=date(2010, 11, 29),
)


# --- a test PKI: a CA and a signer certificate, written as PEM files -------------------


@dataclass(frozen=True)
class Pki:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    other_key_pem: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "RO"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SIUI Access test"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])  # fmt: skip


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing, content_commitment=signing, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
        crl_sign=not signing, encipher_only=False, decipher_only=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    now = datetime.now(timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("SIUI Test CA"))
        .issuer_name(_name("SIUI Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("CAS Gorj - semnare convenții"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signing=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("pki")
    files = {"ca.pem": _pem(ca), "cert.pem": _pem(cert), "key.pem": _pem(key),
             "other.pem": _pem(ec.generate_private_key(ec.SECP256R1()))}  # fmt: skip
    for name, content in files.items():
        (d / name).write_bytes(content)
    return Pki(d / "ca.pem", d / "cert.pem", d / "key.pem", d / "other.pem")


@pytest.fixture(scope="module")
def signer(pki):
    return load_signer(pki.cert_pem, pki.key_pem, [pki.ca_pem])


@pytest.fixture(scope="module")
def signed(signer) -> bytes:
    return sign_pdf(render_agreement(DATA), signer)


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def _text(pdf: bytes, tmp_path: Path, *options: str) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    return " ".join(_run("pdftotext", "-enc", "UTF-8", *options, str(path), "-").split())


# --- the text ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", [(), ("-layout",), ("-raw",)])
def test_text_has_every_field_and_the_diacritics(tmp_path, options):
    text = _text(render_agreement(DATA), tmp_path, *options)
    for expected in (
        "ROMÂNIA",
        "CASA NAȚIONALĂ DE ASIGURĂRI DE SĂNĂTATE",
        "Casa de Asigurări de Sănătate Gorj",
        "CONVENȚIE",
        "CMI Noiembrie Țărănescu",
        "codul unic de identificare 221120108",
        "Registrul Comerțului sub nr. J40/10/3456",
        "GHEORGHE-FLORIN POPA",
        "cod numeric personal 1760412010316",
        "Ordonanța de urgență a Guvernului nr. 158/2005",
        "Legea nr. 95/2006",
        "contractul-cadru",
        "să nu o divulge",
        "orice compromitere",
        "o nouă serie de licență",
        f"Serie de licență: {DATA.license_serial}",
        "Data: 29/11/2010",
        "Semnătura",
    ):
        assert expected in text, expected
    assert {"ă", "î", "ș", "ț", "Ă", "Â", "Ț"} <= set(text)
    assert not set("ŞşŢţ") & set(text), "cedilla look-alikes instead of comma-below"


def test_serial_is_bold_and_fonts_are_embedded_subsets(tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(render_agreement(DATA))
    xml = _run("pdftohtml", "-xml", "-i", "-stdout", str(path))
    fonts = dict(re.findall(r'<fontspec id="(\d+)"[^>]*family="([^"]+)"', xml))
    runs = re.findall(r'<text [^>]*font="(\d+)"[^>]*>(?:<b>)?([^<]*)', xml)
    family = {text.strip(): fonts[f].split("+")[-1] for f, text in runs}  # subset tag off
    assert family[DATA.license_serial] == "DejaVuSansBold"
    assert family["Data: 29/11/2010"] == "DejaVuSansBook"
    listing = _run("pdffonts", str(path))
    assert re.search(r"\+DejaVuSans\S*\s+CID TrueType\s+Identity-H\s+yes yes yes", listing)


def test_document_info_and_one_page():
    created = datetime(2010, 11, 29, 9, 30, tzinfo=timezone.utc)
    reader = PdfFileReader(io.BytesIO(render_agreement(DATA, created=created)))
    info = reader.trailer["/Info"].get_object()
    assert str(info["/Title"]) == "Conventie"
    assert str(info["/Producer"]) == "SIUI Access"
    assert str(info["/CreationDate"]).startswith("D:20101129093000")
    assert reader.root["/Pages"]["/Count"] == 1
    fonts = reader.root["/Pages"]["/Kids"][0].get_object()["/Resources"]["/Font"]
    descriptors = [
        f.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"]
        for f in fonts.values()
    ]
    assert len(descriptors) == 2  # regular and bold
    assert all("/FontFile2" in d for d in descriptors)  # both embedded


def test_a_cnp_provider_without_registry_number_or_representative(tmp_path):
    data = AgreementData(
        house="B", provider_name="Ion Ionescu PFA", cui="1760412010316",
        trade_register_no=None, representative_name=None, representative_cnp=None,
        license_serial=license.generate(), date=date(2026, 1, 2),
    )  # fmt: skip
    text = _text(render_agreement(data), tmp_path)
    assert "identificat prin codul numeric personal 1760412010316" in text
    assert "Casa de Asigurări de Sănătate a Municipiului București" in text
    assert "Registrul Comerțului" not in text and "reprezentat" not in text
    assert "Data: 02/01/2026" in text


def test_font_paths_are_configurable(tmp_path):
    serif = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")  # fonts-dejavu-core
    fonts = FontPaths(regular=serif, bold=DEFAULT_FONTS.bold)
    assert b"DejaVuSerif" in render_agreement(DATA, fonts=fonts)
    with pytest.raises(FileNotFoundError):
        render_agreement(DATA, fonts=FontPaths(tmp_path / "none.ttf", tmp_path / "no.ttf"))


def test_agreement_data_is_checked():
    good = {f: getattr(DATA, f) for f in DATA.__dataclass_fields__}
    typo = DATA.license_serial[:-1] + ("0" if DATA.license_serial[-1] != "0" else "1")
    for bad in ({"license_serial": typo}, {"house": "CNAS"}, {"house": "XX"},
                {"representative_cnp": None}, {"provider_name": ""}):  # fmt: skip
        with pytest.raises(ValueError):
            AgreementData(**{**good, **bad})
    lax = AgreementData(**{**good, "license_serial": DATA.license_serial.lower()})
    assert lax.license_serial == DATA.license_serial


@pytest.mark.parametrize("field", ["provider_name", "trade_register_no", "representative_name",
                                   "representative_cnp", "cui"])
@pytest.mark.parametrize("bad", ["\u202e", "\u2067", "\u200f", "\u061c", "\u200b", "\ufeff",
                                 "\u00ad", "\x00", "\ud800"])
def test_agreement_data_refuses_bidi_and_invisible_characters(field, bad):
    value = getattr(DATA, field)
    with pytest.raises(UnprintableText) as caught:
        AgreementData(**{**{f: getattr(DATA, f) for f in DATA.__dataclass_fields__},
                         field: value[:3] + bad + value[3:]})
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_the_renderer_refuses_to_draw_a_bidi_character_whatever_the_data():
    # Data that slipped past AgreementData's own check still never reaches the page.
    tampered = copy.copy(DATA)
    object.__setattr__(tampered, "provider_name", "SC \u202eLRS AFLA")
    with pytest.raises(UnprintableText, match="text-direction") as caught:
        render_agreement(tampered)
    assert caught.value.field is None  # refused by the line drawer itself
    object.__setattr__(tampered, "representative_name", "ION\u200bPOPA")
    object.__setattr__(tampered, "provider_name", DATA.provider_name)
    with pytest.raises(UnprintableText, match="invisible character"):
        render_agreement(tampered)


# --- the signature ------------------------------------------------------------------


def _validate(pdf: bytes, trust: Path):
    reader = PdfFileReader(io.BytesIO(pdf))
    [sig] = reader.embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(trust))])
    return sig, validate_pdf_signature(sig, context)


def _tamper(pdf: bytes) -> bytes:
    """Flip one bit inside the first stream: covered by the signature's byte range."""
    index = pdf.index(b"stream") + 20
    return pdf[:index] + bytes([pdf[index] ^ 1]) + pdf[index + 1 :]


def test_pyhanko_validates_the_pades_signature(signed, pki):
    sig, status = _validate(signed, pki.ca_pem)
    assert status.bottom_line, status.pretty_print_details()
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert sig.field_name == SIGNATURE_FIELD
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    attrs = {a["type"].native for a in sig.signer_info["signed_attrs"]}
    assert "signing_certificate_v2" in attrs  # required by PAdES baseline
    assert "signing_time" not in attrs  # PAdES puts the time in /M instead
    assert {"digital_signature", "non_repudiation"} <= set(
        status.signing_cert.key_usage_value.native
    )


def test_signed_file_keeps_the_metadata(signed):
    info = PdfFileReader(io.BytesIO(signed)).trailer["/Info"].get_object()
    assert str(info["/Title"]) == "Conventie"
    assert str(info["/Producer"]).startswith("SIUI Access")  # pyHanko appends itself


def test_untrusted_or_tampered_signatures_fail(signed, pki, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    stranger = (
        x509.CertificateBuilder()
        .subject_name(_name("SIUI Test CA"))  # same name, other key
        .issuer_name(_name("SIUI Test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(_pem(stranger))
    _, status = _validate(signed, other_ca)  # trusting the wrong anchor
    assert status.intact and not status.trusted and not status.bottom_line
    _, status = _validate(_tamper(signed), pki.ca_pem)
    assert not status.intact and not status.bottom_line


def test_pdfsig_says_valid_and_trusted(signed, pki, tmp_path):
    path = tmp_path / "generatePassword.pdf"
    path.write_bytes(signed)
    # No -no-ocsp: poppler 22.12 then reports "Unknown issue" for a trusted chain; the
    # test certificates carry no OCSP address, so nothing is fetched anyway.
    args = ["pdfsig"]
    if shutil.which("certutil"):
        nss = tmp_path / "nss"
        nss.mkdir()
        for command in (
            ["-N", "--empty-password"],
            ["-A", "-n", "siui-test-ca", "-t", "CT,C,C", "-i", str(pki.ca_pem)],
        ):
            subprocess.run(["certutil", "-d", f"sql:{nss}", *command], check=True,
                           capture_output=True, timeout=60)  # fmt: skip
        args += ["-nssdir", f"sql:{nss}"]
    out = _run(*args, str(path))
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Signature Field Name: Semnatura" in out, out
    assert "Signature Type: ETSI.CAdES.detached" in out, out
    assert "Total document signed" in out, out
    if shutil.which("certutil"):
        assert "Certificate Validation: Certificate is Trusted." in out, out


def test_pdfsig_rejects_a_tampered_file(signed, tmp_path):
    path = tmp_path / "bad.pdf"
    path.write_bytes(_tamper(signed))
    out = _run("pdfsig", "-nocert", str(path))
    assert "Signature Validation: Digest Mismatch." in out, out


def test_async_signing_matches(signer, pki):
    pdf = render_agreement(DATA)
    signed = asyncio.run(async_sign_pdf(pdf, signer))
    _, status = _validate(signed, pki.ca_pem)
    assert status.bottom_line


def test_load_signer_refuses_bad_material(pki, tmp_path):
    with pytest.raises(ValueError, match="does not belong"):
        load_signer(pki.cert_pem, pki.other_key_pem)
    with pytest.raises(OSError):
        load_signer(pki.cert_pem, tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    with pytest.raises(ValueError):
        load_signer(pki.cert_pem, garbage)

