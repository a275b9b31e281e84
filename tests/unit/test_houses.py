"""The insurance houses."""

from __future__ import annotations

import dataclasses

import pytest

from shared.houses import (
    ALL_HOUSE_CODES,
    COUNTY_HOUSE_CODES,
    HOUSES,
    NATIONAL,
    House,
    UnknownHouse,
    house,
    is_house,
    is_national,
)

ISO_3166_2_RO = (
    "AB AR AG BC BH BN BT BV BR B BZ CS CL CJ CT CV DB DJ GL GR GJ HR HD IL IS IF MM MH MS "
    "NT OT PH SM SJ SB SV TR TM TL VS VL VN"
).split()


def test_the_43_houses_in_display_order():
    assert len(ISO_3166_2_RO) == 42
    assert [h.code for h in HOUSES] == [*ISO_3166_2_RO, "OPSNAJ"]
    assert COUNTY_HOUSE_CODES == frozenset(ISO_3166_2_RO) | {"OPSNAJ"}
    assert ALL_HOUSE_CODES == COUNTY_HOUSE_CODES | {"CNAS"}
    assert len({h.name for h in HOUSES}) == 43


@pytest.mark.parametrize(
    ("code", "name", "short", "county"),
    [
        ("CJ", "Casa de Asigurări de Sănătate Cluj", "CAS-CJ", "Cluj"),
        ("B", "Casa de Asigurări de Sănătate a Municipiului București", "CAS-B", "București"),
        ("GJ", "Casa de Asigurări de Sănătate Gorj", "CAS-GJ", "Gorj"),
        ("BN", "Casa de Asigurări de Sănătate Bistrița-Năsăud", "CAS-BN", "Bistrița-Năsăud"),
        ("VL", "Casa de Asigurări de Sănătate Vâlcea", "CAS-VL", "Vâlcea"),
        ("CT", "Casa de Asigurări de Sănătate Constanța", "CAS-CT", "Constanța"),
        (
            "OPSNAJ",
            "Casa Asigurărilor de Sănătate a Apărării, Ordinii Publice, Siguranței "
            "Naționale și Autorității Judecătorești",
            "CAS-OPSNAJ",
            None,
        ),
        ("CNAS", "Casa Națională de Asigurări de Sănătate", "CNAS", None),
    ],
)
def test_house_fields(code, name, short, county):
    h = house(code)
    assert (h.code, h.name, h.short, h.county) == (code, name, short, county)


def test_iso_code():
    assert house("CJ").iso_code == "RO-CJ"
    assert house("B").iso_code == "RO-B"
    assert house("OPSNAJ").iso_code is None and NATIONAL.iso_code is None


def test_diacritics_are_comma_below_and_names_are_normalized():
    import unicodedata

    for h in (*HOUSES, NATIONAL):
        for text in (h.name, h.county or ""):
            assert not set("ŞşŢţ") & set(text), text
            assert unicodedata.normalize("NFC", text) == text


def test_lookup_is_case_insensitive_and_unknown_codes_raise():
    assert house(" cj ") is house("CJ")
    assert house("cnas") is NATIONAL
    for bad in ("XX", "RO-CJ", "", None, 5):
        with pytest.raises(KeyError):
            house(bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            house(bad)  # type: ignore[arg-type]
    with pytest.raises(UnknownHouse, match="unknown insurance house code: 'XX'"):
        house("XX")


def test_is_house_and_is_national():
    assert all(is_house(c) for c in COUNTY_HOUSE_CODES)
    assert not is_house("CNAS")
    assert is_house("CNAS", include_national=True)
    assert not is_house("cj")  # canonical codes only: normalise with house() first
    assert not is_house(None) and not is_house("XX", include_national=True)
    assert is_national("CNAS") and not is_national("B")


def test_houses_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        house("CJ").name = "x"  # type: ignore[misc]
    assert isinstance(HOUSES, tuple) and all(isinstance(h, House) for h in HOUSES)
