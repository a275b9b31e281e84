"""The licence serial: format, check character, normalization, entropy, keyed hash."""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
from collections import Counter

import pytest

from shared import license
from shared.license import (
    ALPHABET,
    ENTROPY_BITS,
    MalformedSerial,
    check,
    check_symbol,
    digest,
    generate,
    is_well_formed,
    normalize,
    verify,
)

FORMAT = re.compile(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}")
PEPPER = b"p" * 32
SAMPLE = [generate() for _ in range(10)] + [
    generate(randbits=lambda n: 0),
    generate(randbits=lambda n: (1 << n) - 1),
    generate(randbits=lambda n: 0x5555_5555_5555_5555_5555),
]


def _compact(serial: str) -> str:
    return serial.replace("-", "")


def _reference_check(body: str) -> str:
    """An independent computation: sum of v_i * x^(16-i) in GF(2)[x]/(x^5+x^2+1)."""

    def mul(a: int, b: int) -> int:
        product = 0
        for bit in range(5):
            if b >> bit & 1:
                product ^= a << bit
        for bit in range(8, 4, -1):  # reduce the degree 8..5 terms
            if product >> bit & 1:
                product ^= 0b100101 << (bit - 5)
        return product

    def power(k: int) -> int:
        result = 1
        for _ in range(k):
            result = mul(result, 2)
        return result

    total = 0
    for i, c in enumerate(body):
        total ^= mul(ALPHABET.index(c), power(16 - i))
    return ALPHABET[total]


def test_alphabet_has_32_unambiguous_symbols():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("OILU") & set(ALPHABET)
    assert ALPHABET == ALPHABET.upper()


def test_generated_keys_have_the_format_and_pass_their_check():
    for _ in range(2000):
        key = generate()
        assert len(key) == 20 and len(_compact(key)) == license.LENGTH == 17
        assert FORMAT.fullmatch(key), key
        assert check(key) == key and is_well_formed(key)


def test_check_symbol_matches_an_independent_implementation():
    rng = random.Random(7)
    for _ in range(500):
        body = "".join(rng.choice(ALPHABET) for _ in range(16))
        assert check_symbol(body) == _reference_check(body)
    assert generate(randbits=lambda n: 0) == "00000-0000-0000-0000"


@pytest.mark.parametrize("key", SAMPLE)
def test_every_single_substitution_is_caught(key):
    symbols = _compact(key)
    for position in range(len(symbols)):
        for replacement in ALPHABET:
            if replacement != symbols[position]:
                typo = symbols[:position] + replacement + symbols[position + 1 :]
                assert not is_well_formed(typo), (key, position, replacement)


@pytest.mark.parametrize("key", SAMPLE)
def test_every_transposition_is_caught(key):
    symbols = list(_compact(key))
    for i in range(len(symbols)):
        for j in range(i + 1, len(symbols)):  # adjacent ones (j == i + 1) and the rest
            if symbols[i] != symbols[j]:
                swapped = symbols.copy()
                swapped[i], swapped[j] = swapped[j], swapped[i]
                assert not is_well_formed("".join(swapped)), (key, i, j)


def test_adjacent_transpositions_exhaustively_for_every_symbol_pair():
    # Every ordered pair of different symbols at every adjacent pair of positions.
    base = _compact(SAMPLE[0])[:16]
    for p in range(15):
        for a in ALPHABET:
            for b in ALPHABET:
                if a != b:
                    body = base[:p] + a + b + base[p + 2 :]
                    key = body + check_symbol(body)
                    assert is_well_formed(key)
                    assert not is_well_formed(key[:p] + b + a + key[p + 2 :]), key
    for a in ALPHABET:  # the last random symbol and the check symbol itself
        key = base[:15] + a + check_symbol(base[:15] + a)
        if key[15] != key[16]:
            assert not is_well_formed(key[:15] + key[16] + key[15]), key


def test_twin_errors_are_caught():
    symbols = _compact(generate(randbits=lambda n: 0))  # all zeros: aa -> bb anywhere
    for i in range(16):
        for b in ALPHABET[1:]:
            assert not is_well_formed(symbols[:i] + b + b + symbols[i + 2 :])


def test_random_strings_pass_about_one_time_in_32():
    rng = random.Random(11)
    trials = 32_000
    passed = sum(
        is_well_formed("".join(rng.choice(ALPHABET) for _ in range(17))) for _ in range(trials)
    )
    assert abs(passed - trials / 32) < 150


@pytest.mark.parametrize(
    "typed",
    [
        "{k}",
        "{l}",
        "{c}",
        "  {k}  ",
        "{k_spaces}",
        "{k_extra_dashes}",
        "{k_unicode_dashes}",
    ],
)
def test_normalize_accepts_how_people_type(typed):
    key = "F0E11-MVXY-FYK1-1TGK"
    variants = {
        "k": key,
        "l": key.lower(),
        "c": _compact(key),
        "k_spaces": " ".join(_compact(key)),
        "k_extra_dashes": "-F0E11--MVXY-FY-K1-1TGK-",
        "k_unicode_dashes": key.replace("-", "\u2013"),
    }
    assert normalize(typed.format(**variants)) == key


def test_normalize_maps_look_alikes():
    assert normalize("FOE1l-mvxy-fyki-itgk") == "F0E11-MVXY-FYK1-1TGK"
    assert normalize("uuuuu-UUUU-0000-0000") == "VVVVV-VVVV-0000-0000"
    key = generate()
    spoken = key.replace("0", "O").replace("1", "I").replace("V", "u")
    assert check(spoken) == key


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("F0E11-MVXY-FYK1-1TG", "17 characters"),
        ("F0E11-MVXY-FYK1-1TGKK", "17 characters"),
        ("", "17 characters"),
        ("F0E11-MVXY-FYK1-1TG!", "'!'"),
        ("F0E11-MVXY-FYK1-1TGÄ", "'Ä'"),
        ("F0E11/MVXY/FYK1/1TGK", "'/'"),
        (12345, "text"),
        (None, "text"),
    ],
)
def test_normalize_rejects_malformed_text(text, reason):
    with pytest.raises(MalformedSerial) as caught:
        normalize(text)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_check_rejects_a_typo_with_a_reason():
    key = generate()
    typo = key[:-1] + ALPHABET[(ALPHABET.index(key[-1]) + 1) % 32]
    with pytest.raises(MalformedSerial, match="check character"):
        check(typo)
    assert not is_well_formed(typo)
    assert not is_well_formed("not a serial")


def test_the_seeds_legacy_serial_is_not_one_of_ours():
    assert normalize("F8E73-MVXY-FYKL-ITGK") == "F8E73-MVXY-FYK1-1TGK"
    assert not is_well_formed("F8E73-MVXY-FYKL-ITGK")


def test_entropy_is_at_least_80_bits():
    assert ENTROPY_BITS == license.RANDOM_SYMBOLS * math.log2(len(ALPHABET)) >= 80
    requested = []

    def randbits(n: int) -> int:
        requested.append(n)
        return random.Random(n).getrandbits(n)

    generate(randbits=randbits)
    assert requested == [80]


def test_the_random_bits_are_all_kept():
    # The 80-bit number maps one-to-one onto the first 16 symbols: no entropy is lost.
    rng = random.Random(3)
    for n in [0, 1, (1 << 80) - 1] + [rng.getrandbits(80) for _ in range(1000)]:
        body = _compact(generate(randbits=lambda bits, n=n: n))[:16]
        decoded = sum(ALPHABET.index(c) << (5 * i) for i, c in enumerate(body))
        assert decoded == n


def test_symbols_are_uniform_at_every_random_position():
    keys = [_compact(generate()) for _ in range(16_000)]
    for position in range(16):
        counts = Counter(k[position] for k in keys)
        assert set(counts) == set(ALPHABET)
        expected = len(keys) / 32
        chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
        assert chi2 < 80, (position, chi2)  # 31 degrees of freedom; p < 1e-5 above
    assert len(set(keys)) == len(keys)


def test_digest_is_hmac_sha256_of_the_canonical_serial():
    key = generate()
    expected = hmac.new(PEPPER, key.encode(), hashlib.sha256).digest()
    assert digest(key, PEPPER) == expected
    assert digest(_compact(key).lower(), PEPPER) == expected
    assert digest(key, b"q" * 32) != expected
    assert len(expected) == 32


def test_verify():
    key, other = generate(), generate()
    stored = digest(key, PEPPER)
    assert verify(key, PEPPER, stored)
    assert verify(" ".join(key.lower()), PEPPER, stored)
    assert not verify(other, PEPPER, stored)
    assert not verify(key, b"q" * 32, stored)
    with pytest.raises(MalformedSerial):
        verify(key[:-1] + ("0" if key[-1] != "0" else "1"), PEPPER, stored)


def test_a_short_pepper_is_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        digest(generate(), b"short")
    with pytest.raises(ValueError):
        digest(generate(), "a string pepper of enough length")  # type: ignore[arg-type]


def test_load_pepper(tmp_path):
    pepper = bytes.fromhex('ab' * 32)
    good = tmp_path / "pepper"
    good.write_text(pepper.hex() + "\n")
    assert license.load_pepper(good) == pepper
    for text, words in (("zz" * 32, "hexadecimal"), ("ab" * 8 + "a", "hexadecimal"), ("ab" * 15, "at least")):
        good.write_text(text)
        with pytest.raises(ValueError, match=words):
            license.load_pepper(good)
    with pytest.raises(OSError):
        license.load_pepper(tmp_path / "missing")
