"""Fonts cut down to the Latin repertoire, so that each agreement renders fast.

fpdf2 parses the whole TrueType file for every document and subsets it on output: with
DejaVu Sans (about 6,000 glyphs, two faces) that is some 55 ms of the ~85 ms an agreement
takes to lay out. Parsed once into a cut-down copy of a few hundred glyphs, the same
document takes about 30 ms. A document whose text needs a character outside the
repertoire (a name in Greek or Cyrillic letters, say) is laid out with the full fonts:
:func:`fonts_for` picks.

The copies are cached in a directory, named after the source file's content and the
repertoire, written atomically, so several processes may share the cache and a changed
source font is never served stale.
"""
from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

from services.keygen.agreement import DEFAULT_FONTS, AgreementData, FontPaths

# Latin (Basic, Latin-1, Extended-A and -B: Romanian with comma-below ș ț, Hungarian,
# German ...), general punctuation (dashes, „quotes”), currency and letterlike symbols.
LATIN_RANGES: tuple[tuple[int, int], ...] = (
    (0x0020, 0x007E), (0x00A0, 0x024F), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F))
LATIN: frozenset[int] = frozenset(c for lo, hi in LATIN_RANGES for c in range(lo, hi + 1))


@dataclass(frozen=True)
class FontChoice:
    """Fonts, and the code points they cover (None: whatever the full font has)."""

    paths: FontPaths
    covers: frozenset[int] | None = None

    def can_print(self, texts: Iterable[str | None]) -> bool:
        return self.covers is None or all(ord(c) in self.covers for t in texts if t for c in t)


def latin_subset(fonts: FontPaths, directory: Path) -> FontChoice:
    """Cut-down copies of ``fonts`` in ``directory`` (made if missing). Raises OSError when
    the directory cannot be written and the copies are not there yet."""
    directory.mkdir(parents=True, exist_ok=True)
    return FontChoice(FontPaths(_subset_file(Path(fonts.regular), directory),
                                _subset_file(Path(fonts.bold), directory)), LATIN)


def _subset_file(source: Path, directory: Path) -> Path:
    data = source.read_bytes()
    tag = hashlib.sha256(data + repr(LATIN_RANGES).encode()).hexdigest()[:16]
    target = directory / f"{source.stem}-latin-{tag}{source.suffix}"
    if target.exists():
        return target
    font = TTFont(io.BytesIO(data))
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the family name: PDFs still say DejaVuSans
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: fontTools cannot subset them
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(LATIN))
    subsetter.subset(font)
    partial = directory / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        font.save(str(partial))
        os.replace(partial, target)  # atomic: a concurrent reader sees all of it or nothing
    finally:
        partial.unlink(missing_ok=True)
    return target


def fonts_for(data: AgreementData, choices: Sequence[FontChoice]) -> FontPaths:
    """The first of ``choices`` that can print every text of ``data`` (else the defaults)."""
    texts = (data.provider_name, data.cui, data.trade_register_no, data.representative_name,
             data.representative_cnp)
    for choice in choices:
        if choice.can_print(texts):
            return choice.paths
    return DEFAULT_FONTS
