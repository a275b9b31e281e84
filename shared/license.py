"""The activation key ("serie de licență"): generation, typo checking, keyed hashing.

Format: ``XXXXX-XXXX-XXXX-XXXX``, 17 symbols in four groups. The first 16 symbols are
random; the 17th is a check symbol over them.

Alphabet. 32 symbols, upper case: ``0123456789ABCDEFGHJKMNPQRSTVWXYZ`` (the digits and
the letters without I, L, O and U). Of each look-alike group only one member is kept:
``0`` stands for O, ``1`` for I and L, and ``V`` for U; :func:`normalize` maps the
dropped letters onto the kept symbol, so a key read aloud or copied by hand still works.
U goes because, with O, I and L gone, exactly one more letter must go to get the 32
symbols that make each one carry 5 bits, and U/V is the pair most often confused in
handwriting. 2/Z, 5/S and 8/B stay: dropping them would leave 29 symbols, too few for
80 random bits in 16 symbols, they are distinct in the sans-serif face of the printed
agreement, and the check symbol catches any single confusion anyway.

Randomness. 16 symbols x 5 bits = 80 bits from :func:`secrets.randbits`, uniform.

Check symbol. Symbols are read as elements of GF(32) (the field GF(2)[x]/(x^5+x^2+1),
symbol value = its index in the alphabet) and a key s_0 .. s_16 is valid when

    s_0·a^16 + s_1·a^15 + ... + s_15·a + s_16 = 0,    a = x, a primitive element,

i.e. the polynomial whose coefficients are the symbols has the root a; the check symbol
is s_16 = sum of s_i·a^(16-i) over the first 16 (in characteristic 2, minus is plus).
The weights a^16 .. a^0 are 17 distinct non-zero field elements, because a has order
31 > 16. Hence a single substitution e at position i changes the sum by e·a^(16-i),
non-zero; and swapping two different symbols at positions i and j changes it by
(s_i + s_j)·(a^(16-i) + a^(16-j)), a product of two non-zero elements, also non-zero.
So every single-symbol substitution and every transposition, adjacent or not, the
check symbol included, is detected, as are "twin" errors (aa -> bb) next to each other.
Luhn mod 32 would miss the transposition of the alphabet's first and last symbols, and
Damm's scheme guarantees only adjacent transpositions. A random 17-symbol string passes
with probability 1/32: the check catches typos, it is no authentication.

Storage. The server keeps only HMAC-SHA256(pepper, normalized key); :func:`verify`
compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "ALPHABET",
    "LENGTH",
    "RANDOM_SYMBOLS",
    "ENTROPY_BITS",
    "MIN_PEPPER_BYTES",
    "MalformedSerial",
    "generate",
    "check_symbol",
    "normalize",
    "check",
    "is_well_formed",
    "digest",
    "verify",
    "load_pepper",
    "pepper_fingerprint",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = (5, 4, 4, 4)
LENGTH = sum(GROUPS)  # 17 symbols, without the dashes
RANDOM_SYMBOLS = LENGTH - 1
ENTROPY_BITS = RANDOM_SYMBOLS * math.log2(len(ALPHABET))  # 80.0
MIN_PEPPER_BYTES = 16

_BITS = 5  # per symbol: len(ALPHABET) == 2**5
_POLY = 0b100101  # x^5 + x^2 + 1, primitive over GF(2)
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Look-alikes of kept symbols, and lower case, mapped onto the alphabet.
_TRANSLATE = str.maketrans(
    "oOiIlLuU" + ALPHABET.lower(), "001111VV" + ALPHABET
)
# Separators people type or paste: blanks, hyphen-minus, the Unicode dashes, underscore.
_SEPARATORS = frozenset(" \t\r\n\u00a0-_\u2010\u2011\u2012\u2013\u2014\u2212")


class MalformedSerial(ValueError):
    """The text is not a licence serial: wrong length, a foreign character, or a
    failed check symbol. ``reason`` says which, in English, safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _times_a(v: int) -> int:
    """v·x in GF(32): shift, then reduce by the field polynomial."""
    v <<= 1
    return v ^ _POLY if v & (1 << _BITS) else v


def _syndrome(values: list[int]) -> int:
    """Horner's rule: sum of values[i]·a^(n-1-i)."""
    acc = 0
    for v in values:
        acc = _times_a(acc) ^ v
    return acc


def _format(symbols: str) -> str:
    parts, start = [], 0
    for size in GROUPS:
        parts.append(symbols[start : start + size])
        start += size
    return "-".join(parts)


def check_symbol(body: str) -> str:
    """The check symbol for 16 alphabet symbols (no dashes)."""
    if len(body) != RANDOM_SYMBOLS or any(c not in _VALUE for c in body):
        raise MalformedSerial(f"expected {RANDOM_SYMBOLS} symbols of the alphabet")
    return ALPHABET[_times_a(_syndrome([_VALUE[c] for c in body]))]


def generate(*, randbits: Callable[[int], int] = secrets.randbits) -> str:
    """A new key, ``XXXXX-XXXX-XXXX-XXXX``, with 80 random bits and its check symbol.

    ``randbits`` is injectable for deterministic tests; production uses ``secrets``.
    """
    n = randbits(RANDOM_SYMBOLS * _BITS)
    body = "".join(
        ALPHABET[(n >> (_BITS * i)) & (len(ALPHABET) - 1)] for i in range(RANDOM_SYMBOLS)
    )
    return _format(body + check_symbol(body))


def normalize(text: str) -> str:
    """The canonical ``XXXXX-XXXX-XXXX-XXXX`` form of what a person typed.

    Accepts lower case, blanks, and missing, extra or Unicode dashes; maps O to 0, I and
    L to 1, U to V. Does not look at the check symbol (see :func:`check`). Raises
    :class:`MalformedSerial` for a wrong length or a character outside the alphabet.
    """
    if not isinstance(text, str):
        raise MalformedSerial("the licence serial must be text")
    compact = "".join(c for c in text if c not in _SEPARATORS).translate(_TRANSLATE)
    bad = sorted({c for c in compact if c not in _VALUE})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        raise MalformedSerial(f"characters not used in licence serials: {shown}")
    if len(compact) != LENGTH:
        raise MalformedSerial(
            f"a licence serial has {LENGTH} characters (without dashes), got {len(compact)}"
        )
    return _format(compact)


def check(serial: str) -> str:
    """Normalize and verify the check symbol; returns the canonical form.

    Raises :class:`MalformedSerial` when the text is malformed or the check symbol does
    not match (a typo: no lookup is needed to reject it).
    """
    canonical = normalize(serial)
    if _syndrome([_VALUE[c] for c in canonical if c != "-"]) != 0:
        raise MalformedSerial(
            "the licence serial has a typo: its check character does not match"
        )
    return canonical


def is_well_formed(serial: str) -> bool:
    """Whether :func:`check` accepts ``serial``."""
    try:
        check(serial)
    except MalformedSerial:
        return False
    return True


def digest(serial: str, pepper: bytes) -> bytes:
    """HMAC-SHA256, keyed with the server secret ``pepper``, of the canonical serial.

    The only form in which a key is stored. Raises :class:`MalformedSerial` for a serial
    :func:`check` rejects, and ValueError for a pepper shorter than 16 bytes.
    """
    if not isinstance(pepper, (bytes, bytearray)) or len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"the pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return hmac.new(bytes(pepper), check(serial).encode("ascii"), hashlib.sha256).digest()


def verify(serial: str, pepper: bytes, expected: bytes) -> bool:
    """Whether ``serial`` hashes to ``expected`` (constant-time comparison).

    Raises :class:`MalformedSerial` like :func:`check`, so that callers answer a typo
    differently from a wrong key.
    """
    return hmac.compare_digest(digest(serial, pepper), bytes(expected))


def load_pepper(path: Path) -> bytes:
    """The pepper from its file: hexadecimal text (as deploy/devpki writes it), at least
    ``MIN_PEPPER_BYTES``. keygen and ocsp both load it here, so both hash alike.
    Raises OSError when unreadable and ValueError when malformed."""
    text = Path(path).read_text("ascii").strip()
    try:
        pepper = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: the licence pepper must be hexadecimal") from None
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ValueError(f"{path}: the licence pepper must be at least {MIN_PEPPER_BYTES} bytes")
    return pepper


def pepper_fingerprint(pepper: bytes) -> str:
    """A short, non-secret name of the pepper, for logs comparing two services' settings."""
    return hashlib.sha256(b"siui-pepper-id" + pepper).hexdigest()[:12]
