"""The health-insurance houses: who owns providers, users and certificates.

A *house code* is what the API calls ``cas``:

* the 42 county houses, one per ISO 3166-2:RO subdivision, coded with the subdivision
  code without its ``RO-`` prefix (``AB`` ... ``VN``, ``B`` for the Municipality of
  Bucharest);
* ``OPSNAJ``, the house of the defence, public-order, national-security and judiciary
  staff, which has no county but works like a county house;
* ``CNAS``, the national house. It sees every house's data but registers no provider
  itself, so it is kept apart from :data:`HOUSES`.

The 43 houses below the national level are :data:`HOUSES` (display order: the counties
alphabetically by their Romanian name, as ISO 3166-2:RO lists them, then OPSNAJ); their
codes are :data:`COUNTY_HOUSE_CODES`. Names carry Romanian diacritics with comma-below
ș/ț (U+0219/U+021B), never the cedilla look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "House",
    "UnknownHouse",
    "HOUSES",
    "NATIONAL",
    "COUNTY_HOUSE_CODES",
    "ALL_HOUSE_CODES",
    "house",
    "is_house",
    "is_national",
]


@dataclass(frozen=True, slots=True)
class House:
    """One insurance house.

    ``code`` is the API's ``cas`` value; ``short`` is the org-unit name used in external
    user names (``<CUI>_CAS-CJ``); ``county`` is the county's name, or None for OPSNAJ and
    CNAS.
    """

    code: str
    name: str
    short: str
    county: str | None

    @property
    def iso_code(self) -> str | None:
        """The ISO 3166-2 code (``RO-CJ``), or None for a house that has no county."""
        return f"RO-{self.code}" if self.county is not None else None


class UnknownHouse(KeyError, ValueError):
    """No house has this code. A KeyError for lookups and a ValueError for validation."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown house"


# ISO 3166-2:RO code -> county name, in the standard's (alphabetical) order.
_COUNTIES: tuple[tuple[str, str], ...] = (
    ("AB", "Alba"),
    ("AR", "Arad"),
    ("AG", "Argeș"),
    ("BC", "Bacău"),
    ("BH", "Bihor"),
    ("BN", "Bistrița-Năsăud"),
    ("BT", "Botoșani"),
    ("BV", "Brașov"),
    ("BR", "Brăila"),
    ("B", "București"),
    ("BZ", "Buzău"),
    ("CS", "Caraș-Severin"),
    ("CL", "Călărași"),
    ("CJ", "Cluj"),
    ("CT", "Constanța"),
    ("CV", "Covasna"),
    ("DB", "Dâmbovița"),
    ("DJ", "Dolj"),
    ("GL", "Galați"),
    ("GR", "Giurgiu"),
    ("GJ", "Gorj"),
    ("HR", "Harghita"),
    ("HD", "Hunedoara"),
    ("IL", "Ialomița"),
    ("IS", "Iași"),
    ("IF", "Ilfov"),
    ("MM", "Maramureș"),
    ("MH", "Mehedinți"),
    ("MS", "Mureș"),
    ("NT", "Neamț"),
    ("OT", "Olt"),
    ("PH", "Prahova"),
    ("SM", "Satu Mare"),
    ("SJ", "Sălaj"),
    ("SB", "Sibiu"),
    ("SV", "Suceava"),
    ("TR", "Teleorman"),
    ("TM", "Timiș"),
    ("TL", "Tulcea"),
    ("VS", "Vaslui"),
    ("VL", "Vâlcea"),
    ("VN", "Vrancea"),
)


def _county_house(code: str, county: str) -> House:
    # Bucharest is a municipality, not a county: its house is named after it as such.
    name = (
        "Casa de Asigurări de Sănătate a Municipiului București"
        if code == "B"
        else f"Casa de Asigurări de Sănătate {county}"
    )
    return House(code=code, name=name, short=f"CAS-{code}", county=county)


OPSNAJ = House(
    code="OPSNAJ",
    name=(
        "Casa Asigurărilor de Sănătate a Apărării, Ordinii Publice, "
        "Siguranței Naționale și Autorității Judecătorești"
    ),
    short="CAS-OPSNAJ",
    county=None,
)

NATIONAL = House(
    code="CNAS",
    name="Casa Națională de Asigurări de Sănătate",
    short="CNAS",
    county=None,
)

HOUSES: tuple[House, ...] = tuple(_county_house(c, n) for c, n in _COUNTIES) + (OPSNAJ,)

COUNTY_HOUSE_CODES: frozenset[str] = frozenset(h.code for h in HOUSES)
"""The 43 codes below the national level: houses that own providers and whose users
see only their own house's records."""

ALL_HOUSE_CODES: frozenset[str] = COUNTY_HOUSE_CODES | {NATIONAL.code}
"""Every valid ``cas`` of an internal user: the 43 houses and CNAS."""

_BY_CODE: dict[str, House] = {h.code: h for h in (*HOUSES, NATIONAL)}


def _key(code: object) -> str:
    return code.strip().upper() if isinstance(code, str) else ""


def house(code: str) -> House:
    """The house with this code (case-insensitive, surrounding blanks ignored).

    Accepts CNAS too. Raises :class:`UnknownHouse` (a KeyError and a ValueError) for
    anything else.
    """
    try:
        return _BY_CODE[_key(code)]
    except KeyError:
        raise UnknownHouse(f"unknown insurance house code: {code!r}") from None


def is_house(code: object, *, include_national: bool = False) -> bool:
    """Whether ``code`` names one of the 43 houses (CNAS too if ``include_national``).

    Exact match: the canonical codes are upper case.
    """
    codes = ALL_HOUSE_CODES if include_national else COUNTY_HOUSE_CODES
    return isinstance(code, str) and code in codes


def is_national(code: object) -> bool:
    """Whether ``code`` is the national house, CNAS."""
    return code == NATIONAL.code
