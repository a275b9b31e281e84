"""The speed-ups of the agreement: Latin font subsets (cached, with a fallback to the full
fonts) and a signer that parses its key once, for RSA and ECDSA alike."""
from __future__ import annotations

import asyncio
import io
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
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


def _validate(pdf: bytes, root: Path):
    [sig] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(root))])
    return asyncio.run(async_validate_pdf_signature(sig, context))


def test_an_ecdsa_house_certificate_signs_through_the_preloaded_key(tmp_path, subset, test_pki):
    ca, _ = test_pki.root.write(tmp_path, "ca")
    cert, key = test_pki.document_signer_ec.write(tmp_path, "signer")
    signer = load_signer(cert, key)
    assert isinstance(signer, PreloadedKeySigner)
    status = _validate(signed_agreement(DATA, signer, fonts=subset.paths), ca)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
