"""The agreement ("Convenție", ``generatePassword.pdf``) that carries a licence serial.

:func:`render_agreement` lays the document out with fpdf2 in DejaVu Sans, embedded and
subset, so the Romanian diacritics (ă â î ș ț, comma-below) survive copying and text
extraction. :func:`sign_pdf` adds the house's PAdES baseline signature (CAdES detached,
``/SubFilter /ETSI.CAdES.detached``) in an invisible field named ``Semnatura``, as an
incremental update; the tests verify it with pyHanko's validator and poppler's pdfsig.

Signing runs pyHanko's asyncio code: call :func:`sign_pdf` outside an event loop (for
example in ``loop.run_in_executor``) or await :func:`async_sign_pdf`. Both rendering and
signing are CPU-bound; a handler should run them in an executor either way.

What is drawn is what was stored: a text holding a character that draws nothing yet
changes what is seen (a bidirectional control, a zero-width or invisible character, a
control character: services/keygen/text.py) is refused with :class:`UnprintableText`,
both when the :class:`AgreementData` is made and again for every line drawn.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from os import PathLike
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from fpdf import FPDF
from pyhanko.keys import load_cert_from_pemder, load_certs_from_pemder
from pyhanko.keys import load_private_key_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from shared import license
from shared.houses import COUNTY_HOUSE_CODES, house

from services.keygen.text import first_unsafe

__all__ = [
    "AgreementData",
    "UnprintableText",
    "FontPaths",
    "DEFAULT_FONTS",
    "SIGNATURE_FIELD",
    "FILENAME",
    "render_agreement",
    "load_signer",
    "PreloadedKeySigner",
    "sign_pdf",
    "async_sign_pdf",
    "signed_agreement",
]

FILENAME = "generatePassword.pdf"
SIGNATURE_FIELD = "Semnatura"
TITLE = "Conventie"
PRODUCER = "SIUI Access"
SIGNING_REASON = "Convenție privind seria de licență"

StrPath = str | PathLike[str]


@dataclass(frozen=True, slots=True)
class FontPaths:
    """The TrueType files used: any Unicode font with Romanian glyphs will do."""

    regular: StrPath
    bold: StrPath


_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core
DEFAULT_FONTS = FontPaths(_DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf")


class UnprintableText(ValueError):
    """A text of the agreement holds a character that must not be drawn. ``field`` names
    it (an :class:`AgreementData` field, or ``None`` for a line of the document)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field or 'the agreement'} {reason}")
        self.field = field
        self.reason = reason


def _refuse_unprintable(field: str | None, text: str) -> None:
    found = first_unsafe(text)
    if found is not None:
        raise UnprintableText(field, found[1])


#: The AgreementData fields that are printed as given.
TEXT_FIELDS = ("provider_name", "cui", "trade_register_no", "representative_name",
               "representative_cnp")


@dataclass(frozen=True, slots=True)
class AgreementData:
    """What the agreement states. ``cui`` may be a CNP (13 digits) for a provider
    that is a person; the trade-register number and the representative are left out of
    the text when absent. ``license_serial`` must pass its check character."""

    house: str
    provider_name: str
    cui: str
    trade_register_no: str | None
    representative_name: str | None
    representative_cnp: str | None
    license_serial: str
    date: date

    def __post_init__(self) -> None:
        if self.house not in COUNTY_HOUSE_CODES:
            raise ValueError(f"not a house that registers providers: {self.house!r}")
        for name in ("provider_name", "cui"):
            if not getattr(self, name):
                raise ValueError(f"{name} is required")
        if bool(self.representative_name) != bool(self.representative_cnp):
            raise ValueError("the representative needs both a name and a CNP")
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                _refuse_unprintable(name, value)
        # A serial that would fail at activation must never be printed.
        object.__setattr__(self, "license_serial", license.check(self.license_serial))


def _paragraphs(data: AgreementData) -> tuple[str, str]:
    """The two paragraphs of the agreement, in Romanian."""
    house_name = house(data.house).name
    kind = "codul numeric personal" if len(data.cui) == 13 else "codul unic de identificare"
    parts = [f"Furnizorul {data.provider_name}, identificat prin {kind} {data.cui}"]
    if data.trade_register_no:
        parts.append(
            f"înregistrat la Registrul Comerțului sub nr.\u00a0{data.trade_register_no}"
        )
    if data.representative_name:
        parts.append(
            f"reprezentat legal de {data.representative_name}, "
            f"cod numeric personal {data.representative_cnp}"
        )
    first = ", ".join(parts) + (
        ", se obligă să folosească seria de licență primită numai pentru transmiterea "
        f"către {house_name} a raportărilor prevăzute de Ordonanța de urgență a "
        "Guvernului nr.\u00a0158/2005 privind concediile și indemnizațiile de "
        "asigurări sociale de sănătate, de Legea nr.\u00a095/2006 privind reforma în "
        "domeniul sănătății și de contractul-cadru care reglementează condițiile "
        "acordării asistenței medicale în cadrul sistemului de asigurări sociale de "
        "sănătate."
    )
    second = (
        f"De asemenea, furnizorul {data.provider_name} se obligă, pe propria răspundere, "
        "să păstreze secretul seriei de licență, să nu o divulge și să nu o cedeze "
        f"altor persoane, precum și să anunțe de îndată {house_name} despre orice "
        "compromitere a acesteia, pentru a i se emite o nouă serie de licență."
    )
    return first, second


def render_agreement(
    data: AgreementData,
    *,
    fonts: FontPaths = DEFAULT_FONTS,
    created: datetime | None = None,
) -> bytes:
    """The unsigned agreement as PDF bytes (A4, one page).

    ``created`` is the document's creation date (default: now). Raises
    FileNotFoundError when a font file is missing, and :class:`UnprintableText` rather
    than draw a bidirectional control or an invisible character.
    """
    pdf = FPDF(format="A4")
    pdf.set_title(TITLE)
    pdf.set_producer(PRODUCER)
    pdf.set_creator(PRODUCER)
    pdf.set_author(house(data.house).name)
    pdf.set_lang("ro-RO")
    pdf.set_creation_date(created or datetime.now(timezone.utc))
    pdf.add_font("DejaVu", "", str(fonts.regular))
    pdf.add_font("DejaVu", "B", str(fonts.bold))
    pdf.set_margins(left=25, top=25, right=25)
    pdf.set_auto_page_break(auto=True, margin=25)
    pdf.add_page()
    full = pdf.epw  # effective page width

    def line(text: str, *, size: float = 11, bold: bool = False, align: str = "L",
             height: float = 6) -> None:  # fmt: skip
        _refuse_unprintable(None, text)  # defence in depth: never drawn, whatever the data
        pdf.set_font("DejaVu", "B" if bold else "", size)
        pdf.multi_cell(full, height, text, align=align, new_x="LMARGIN", new_y="NEXT")

    line("ROMÂNIA", bold=True)
    line("CASA NAȚIONALĂ DE ASIGURĂRI DE SĂNĂTATE", bold=True)
    line(house(data.house).name)
    pdf.ln(14)
    line("CONVENȚIE", size=16, bold=True, align="C", height=8)
    pdf.ln(10)
    for paragraph in _paragraphs(data):
        line(paragraph)
        pdf.ln(4)
    pdf.ln(6)

    pdf.set_font("DejaVu", "", 11)
    label = "Serie de licență: "
    pdf.cell(pdf.get_string_width(label), 8, label)
    pdf.set_font("DejaVu", "B", 14)
    pdf.cell(0, 8, data.license_serial, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    line(f"Data: {data.date:%d/%m/%Y}")
    pdf.ln(12)
    line("Semnătura")
    pdf.ln(12)
    pdf.set_draw_color(0)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + 70, pdf.get_y())
    return bytes(pdf.output())


def load_signer(
    cert_pem_path: StrPath,
    key_pem_path: StrPath,
    chain_pem_paths: Iterable[StrPath] = (),
    *,
    key_passphrase: bytes | None = None,
) -> signers.SimpleSigner:
    """The house's signer, built once at start-up from PEM (or DER) files.

    ``chain_pem_paths`` are intermediate (and optionally root) certificates, embedded
    in each signature so that validators can build the path. Raises OSError for an
    unreadable file and ValueError for bad key material or a key that does not belong
    to the certificate (pyHanko's own loader would only log and return None).
    """
    key = load_private_key_from_pemder(str(key_pem_path), passphrase=key_passphrase)
    cert = load_cert_from_pemder(str(cert_pem_path))
    chain = list(load_certs_from_pemder([str(p) for p in chain_pem_paths]))
    public = serialization.load_der_private_key(key.dump(), password=None).public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if spki != cert.public_key.dump():
        raise ValueError("the private key does not belong to the signing certificate")
    return PreloadedKeySigner(
        signing_cert=cert,
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs(chain),
    )


class PreloadedKeySigner(signers.SimpleSigner):
    """A SimpleSigner that parses its private key once.

    pyHanko's SimpleSigner loads the key from DER for every signature; for RSA that
    includes OpenSSL's key consistency check, some 25 ms, half the cost of a signed
    agreement. RSA PKCS#1 v1.5 and ECDSA (the mechanisms house certificates use) are
    signed here with the loaded key; any other mechanism goes to pyHanko as before.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._private_key = serialization.load_der_private_key(
            self.signing_key.dump(), password=None
        )

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        try:
            mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        except ValueError:  # a mechanism asn1crypto cannot name: pyHanko decides
            return super().sign_raw(data, digest_algorithm)
        key, digest = self._private_key, get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), digest)
        if mechanism == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(digest))
        return super().sign_raw(data, digest_algorithm)


def _reserve(signer: signers.Signer) -> int | None:
    """Room for the CMS (hex digits): its certificates plus 6 KiB for the signature and
    attributes, enough for RSA-4096 and ML-DSA-87. Without it pyHanko signs a dummy
    first only to measure, which doubles the cost. None (let pyHanko measure) for
    signers whose certificates cannot be listed."""
    try:
        certs = [signer.signing_cert, *signer.cert_registry]
    except (NotImplementedError, TypeError):
        return None
    return 2 * (sum(len(c.dump()) for c in certs if c is not None) + 6144)


def _pdf_signer(signer: signers.Signer) -> signers.PdfSigner:
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=SIGNING_REASON,
    )
    return signers.PdfSigner(meta, signer=signer)


def sign_pdf(pdf: bytes, signer: signers.Signer) -> bytes:
    """``pdf`` with a PAdES baseline signature by ``signer`` (see :func:`load_signer`).

    Must not be called from a running event loop (pyHanko runs its own).
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = _pdf_signer(signer).sign_pdf(writer, bytes_reserved=_reserve(signer))
    return out.getvalue()


async def async_sign_pdf(pdf: bytes, signer: signers.Signer) -> bytes:
    """:func:`sign_pdf` for callers already inside an event loop."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    out = await _pdf_signer(signer).async_sign_pdf(writer, bytes_reserved=_reserve(signer))
    return out.getvalue()


def signed_agreement(data: AgreementData, signer: signers.Signer, *,
                     fonts: FontPaths = DEFAULT_FONTS) -> bytes:
    """:func:`render_agreement` then :func:`sign_pdf`: the whole ``generatePassword.pdf``.

    CPU-bound and runs pyHanko's own event loop: call it in a worker thread.
    """
    return sign_pdf(render_agreement(data, fonts=fonts), signer)
