"""The agreement PDF: its text, fonts and metadata, and its PAdES signature as pyHanko
and poppler's pdfsig see it. Needs poppler-utils (pdftotext, pdftohtml, pdfsig) and
libnss3-tools (certutil, for pdfsig's trust database); deploy/setup.sh installs both."""

from __future__ import annotations

import asyncio
import copy
import io
import re
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
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
from tests.support.pdfsig import TRUSTED, VALID, assert_valid_and_trusted, nss_database, pdfsig
from tests.support.pki import root_ca

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


# --- the signer: the test PKI's document signer under its root, written as PEM files -----


@dataclass(frozen=True)
class SigningFiles:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    other_key_pem: Path  # a key of another certificate


@pytest.fixture(scope="module")
def signing(tmp_path_factory, test_pki) -> SigningFiles:
    directory = tmp_path_factory.mktemp("agreement-pki")
    ca_pem, _ = test_pki.root.write(directory, "ca")
    cert_pem, key_pem = test_pki.document_signer.write(directory, "signer")
    _, other_key_pem = test_pki.document_signer_ec.write(directory, "other")
    return SigningFiles(ca_pem, cert_pem, key_pem, other_key_pem)


@pytest.fixture(scope="module")
def signer(signing):
    return load_signer(signing.cert_pem, signing.key_pem, [signing.ca_pem])


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


def test_pyhanko_validates_the_pades_signature(signed, signing):
    sig, status = _validate(signed, signing.ca_pem)
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


def test_untrusted_or_tampered_signatures_fail(signed, signing, test_pki, tmp_path):
    stranger = root_ca(test_pki.root.cert.subject, now=test_pki.now)  # same name, other key
    other_ca, _ = stranger.write(tmp_path, "other")
    _, status = _validate(signed, other_ca)  # trusting the wrong anchor
    assert status.intact and not status.trusted and not status.bottom_line
    _, status = _validate(_tamper(signed), signing.ca_pem)
    assert not status.intact and not status.bottom_line


def test_pdfsig_says_valid_and_trusted(signed, signing, tmp_path):
    path = tmp_path / "generatePassword.pdf"
    path.write_bytes(signed)
    out = assert_valid_and_trusted(path, signing.ca_pem, tmp_path)
    assert "Signature Field Name: Semnatura" in out, out
    assert "Signature Type: ETSI.CAdES.detached" in out, out
    assert "Total document signed" in out, out


def test_pdfsig_trusts_only_what_its_database_holds(signed, tmp_path):
    """The control for the test above: the same file, a database without our root."""
    path = tmp_path / "generatePassword.pdf"
    path.write_bytes(signed)
    out = pdfsig(path, nss_database(tmp_path / "empty-nss"))
    assert VALID in out and TRUSTED not in out, out


def test_pdfsig_rejects_a_tampered_file(signed, tmp_path):
    path = tmp_path / "bad.pdf"
    path.write_bytes(_tamper(signed))
    out = _run("pdfsig", "-nocert", str(path))
    assert "Signature Validation: Digest Mismatch." in out, out


def test_async_signing_matches(signer, signing):
    pdf = render_agreement(DATA)
    signed = asyncio.run(async_sign_pdf(pdf, signer))
    _, status = _validate(signed, signing.ca_pem)
    assert status.bottom_line


def test_load_signer_refuses_bad_material(signing, tmp_path):
    with pytest.raises(ValueError, match="does not belong"):
        load_signer(signing.cert_pem, signing.other_key_pem)
    with pytest.raises(OSError):
        load_signer(signing.cert_pem, tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    with pytest.raises(ValueError):
        load_signer(signing.cert_pem, garbage)

