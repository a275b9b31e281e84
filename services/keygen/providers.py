"""Providers ("Persoană juridică"): the fields of the seed's form and their validation.

:func:`validate_provider` takes the JSON body of ``POST``/``PATCH /v1/providers`` and
returns cleaned values (dates as :class:`datetime.date`, codes upper case, the CUI
without its ``RO`` prefix) or raises :class:`InvalidFields` naming every bad field at
once. Messages are English; the console translates them.

Every field has a bound: texts a length and a repertoire (no control, invisible or
text-direction characters: services/keygen/text.py), dates 1900-01-01 .. 2199-12-31,
``print_order`` 0 .. 1,000,000 (a number too long even to read is out of range too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date
from typing import Any

from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.ro import cnp as stdnum_cnp
from stdnum.ro import cui as stdnum_cui

from shared.houses import COUNTY_HOUSE_CODES, NATIONAL

from services.keygen.bodies import OverlongNumber
from services.keygen.text import field_label, problem_in

__all__ = [
    "ORG_TYPES", "PROVIDER_FIELDS", "InvalidFields",
    "validate_provider", "apply_patch", "fold",
]  # fmt: skip

# "Tip organizatoric". Legal forms first (CMI: cabinet medical individual, CMG: grupat,
# CMA: asociat, SCM: societate civilă medicală, SRL-D: SRL debutant, SCS: în comandită
# simplă, PFA: persoană fizică autorizată, II/IF: întreprindere individuală/familială,
# ONG: asociație sau fundație), then kinds of provider.
ORG_TYPES: tuple[str, ...] = (
    "CMI", "CMG", "CMA", "SCM", "SRL", "SRL-D", "SA", "SNC", "SCS", "PFA", "II", "IF",
    "ONG", "unitate sanitară publică", "spital", "policlinică", "centru medical",
    "centru de diagnostic și tratament", "cabinet stomatologic", "laborator", "farmacie",
    "drogherie", "ambulanță", "îngrijiri la domiciliu", "dispozitive medicale",
)  # fmt: skip

PROVIDER_FIELDS: tuple[str, ...] = (
    "cas", "cui", "name", "description", "code", "cui_date", "org_type",
    "fiscal_attribute", "fiscal_attribute_date", "trade_register_no", "registered_on",
    "country", "locality", "currency", "print_order", "valid_from", "valid_to",
    "work_point", "location_type", "legal_representative",
)  # fmt: skip
REQUIRED = ("cas", "cui", "name")
DEFAULTS = {"country": "ROM", "currency": "RON"}
DATE_FIELDS = (
    "cui_date", "fiscal_attribute_date", "registered_on", "valid_from", "valid_to",
)  # fmt: skip
# Free-text fields and their maximum lengths, in characters.
TEXT_LIMITS = {"name": 200, "description": 500, "locality": 100, "work_point": 200,
               "location_type": 100}  # fmt: skip
CODE_MAX = 32
PRINT_ORDER_MAX = 1_000_000
# Dates a provider's record can sensibly hold (a registration, a contract's validity).
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2199, 12, 31)

_JSON_TYPES = {str: "string", bool: "boolean", int: "number", float: "number",
               dict: "object", list: "array", type(None): "null"}  # fmt: skip
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only
# Nr. Reg. Com.: [J|F|C]<county 1-52>/<order number>/<year>, e.g. J40/10/3456, or the
# compact form registrations get since 2024: J<year><6-9 digits>.
_TRN_CLASSIC = re.compile(r"([JFC]?)(\d{1,2})/(\d{1,7})/(\d{2}|\d{4})", re.ASCII)
_TRN_COMPACT = re.compile(r"[JFC](?:19[89]\d|20\d\d)\d{6,9}", re.ASCII)
# Cedilla look-alikes that old keyboards produce, mapped to the correct comma-below.
_CEDILLA = str.maketrans("ŞşŢţ", "ȘșȚț")


class InvalidFields(ValueError):
    """Some fields are invalid. ``errors`` maps each field (``legal_representative.cnp``
    for nested ones) to an English message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class _Bad(Exception):
    """One field's problem; collected into InvalidFields."""


def _type_name(value: Any) -> str:
    if isinstance(value, OverlongNumber):
        return "number"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, not {_type_name(value)}")
    if len(value) > 4 * limit:  # far too long: refused before any work on it
        raise _Bad(f"must be at most {limit} characters")
    text = unicodedata.normalize("NFC", value.translate(_CEDILLA)).strip()
    if (problem := problem_in(text)) is not None:
        raise _Bad(problem)
    if len(text) > limit:
        raise _Bad(f"must be at most {limit} characters")
    return text or None


def fold(text: str) -> str:
    """Case- and diacritic-insensitive key: 'Ingrijiri' finds 'îngrijiri'."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_ORG_TYPE_KEYS = {fold(t): t for t in ORG_TYPES}


def _date(value: Any) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):  # a date, not a datetime
        return _date_in_range(value)
    text = _text(value, 40) or ""
    if not _ISO_DATE.fullmatch(text):
        raise _Bad("must be an ISO 8601 date, YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise _Bad("is not a calendar date") from None
    return _date_in_range(parsed)


def _date_in_range(value: date) -> date:
    if value < DATE_MIN:
        raise _Bad("must not be before 1900")  # the console translates this wording
    if value > DATE_MAX:
        raise _Bad(f"must not be after {DATE_MAX.year}")
    return value


def _cnp(value: Any) -> str:
    text = _text(value, 20)
    if text is None:
        raise _Bad("is required")
    try:
        return stdnum_cnp.validate(text)
    except InvalidChecksum:
        raise _Bad("is not a valid CNP: its check digit does not match") from None
    except ValidationError:
        raise _Bad("is not a valid CNP: 13 digits with a valid date and county") from None


def _cui(value: Any) -> tuple[str, bool]:
    """The fiscal code without blanks or RO prefix, and whether RO was given."""
    text = _text(value, 20)
    if text is None:
        raise _Bad("is required")
    compact = re.sub(r"[\s-]", "", text).upper()
    vat = compact.startswith("RO")
    digits = compact[2:] if vat else compact
    if not digits.isdigit():
        raise _Bad("must be a CUI (2 to 10 digits, optionally RO-prefixed) or a CNP")
    if len(digits) == 13:
        if vat:
            raise _Bad("a CNP does not take the RO prefix")
        return _cnp(digits), False
    try:
        return stdnum_cui.validate(digits), vat
    except InvalidChecksum:
        raise _Bad("is not a valid CUI: its check digit does not match") from None
    except ValidationError:
        raise _Bad("must be a CUI (2 to 10 digits, not starting with 0) or a CNP") from None


def _trade_register_no(value: Any) -> str | None:
    text = _text(value, 30)
    if text is None:
        return None
    compact = re.sub(r"\s", "", text).upper()
    if _TRN_COMPACT.fullmatch(compact):
        return compact
    m = _TRN_CLASSIC.fullmatch(compact)
    if m is None or not 1 <= int(m[2]) <= 52:
        raise _Bad("must look like J40/10/3456 (J/F/C, county 1-52, number, year)")
    return f"{m[1]}{int(m[2]):02d}/{m[3]}/{m[4]}"


def _org_type(value: Any) -> str | None:
    text = _text(value, 60)
    if text is not None and fold(text) not in _ORG_TYPE_KEYS:
        raise _Bad("is not a known organisation type")
    return _ORG_TYPE_KEYS[fold(text)] if text else None


def _pattern(pattern: str, limit: int, message: str, *, upper: bool = True):
    """A checker for a short code: at most ``limit`` characters matching ``pattern``
    (after upper-casing, if ``upper``)."""

    def check(value: Any) -> str | None:
        text = _text(value, limit)
        text = text.upper() if text and upper else text
        if text is not None and not re.fullmatch(pattern, text):
            raise _Bad(message)
        return text

    return check


def _print_order(value: Any) -> int:
    if isinstance(value, OverlongNumber):  # thousands of digits: out of range by far
        raise _Bad(f"must be between 0 and {PRINT_ORDER_MAX}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"must be an integer, not {_type_name(value)}")
    if not 0 <= value <= PRINT_ORDER_MAX:
        raise _Bad(f"must be between 0 and {PRINT_ORDER_MAX}")
    return value


def _cas(value: Any) -> str:
    cas = (_text(value, 10) or "").upper()
    if cas == NATIONAL.code:
        raise _Bad("CNAS does not register providers: use a county house code")
    if cas not in COUNTY_HOUSE_CODES:
        raise _Bad("is not an insurance house code (AB ... VN, B, OPSNAJ)")
    return cas


# One checker per scalar field; None out means "empty". cui and legal_representative
# are handled in validate_provider because they touch other fields.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    **{f: (lambda v, n=n: _text(v, n)) for f, n in TEXT_LIMITS.items()},
    **{f: _date for f in DATE_FIELDS},
    "cas": _cas,
    "code": _pattern(
        r"[0-9A-Za-z][0-9A-Za-z./_-]*", CODE_MAX, "may hold only letters, digits and . / _ -",
        upper=False,
    ),
    "org_type": _org_type,
    "country": _pattern("[A-Z]{3}", 4, "must be an ISO 3166 alpha-3 country code such as ROM"),
    "currency": _pattern("[A-Z]{3}", 4, "must be an ISO 4217 currency code such as RON"),
    "fiscal_attribute": _pattern("[A-Z]{1,4}", 4, "must be a fiscal attribute such as RO"),
    "print_order": _print_order,
    "trade_register_no": _trade_register_no,
}


def _legal_representative(value: Any, errors: dict[str, str]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        errors["legal_representative"] = f"must be an object, not {_type_name(value)}"
        return None
    for key in value:
        if key not in ("name", "cnp"):
            errors[f"legal_representative.{field_label(key)}"] = "unknown field"
    clean: dict[str, str] = {}
    for key, check in (("name", _CHECKS["name"]), ("cnp", _cnp)):
        try:
            if (result := check(value.get(key, ""))) is None:
                raise _Bad("is required")
            clean[key] = result
        except _Bad as e:
            errors[f"legal_representative.{key}"] = str(e)
    return clean


def validate_provider(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Cleaned provider fields, or :class:`InvalidFields` listing every problem.

    ``partial=True`` validates a PATCH body: nothing is required and no default is
    filled in; an optional field set to null clears it. A full validation fills in
    ``country``/``currency`` and ``code`` (from the CUI), and returns every field.
    A ``RO``-prefixed CUI is stored without the prefix, and sets ``fiscal_attribute``
    to ``RO`` unless the body gives one.
    """
    if not isinstance(data, dict):
        raise InvalidFields({"": f"the provider must be an object, not {_type_name(data)}"})
    errors = {field_label(f): "unknown field" for f in data if f not in PROVIDER_FIELDS}
    clean: dict[str, Any] = {}
    vat_prefix = False
    for field in PROVIDER_FIELDS:
        if field not in data:
            continue
        value = data[field]
        try:
            if value is None or (isinstance(value, str) and not value.strip()):
                if field in REQUIRED:
                    raise _Bad("is required")
                clean[field] = DEFAULTS.get(field) if not partial else None
            elif field == "cui":
                clean["cui"], vat_prefix = _cui(value)
            elif field == "legal_representative":
                clean[field] = _legal_representative(value, errors)
            else:
                clean[field] = _CHECKS[field](value)
        except _Bad as e:
            errors[field] = str(e)
    if not partial:
        for field in REQUIRED:
            if field not in data:
                errors[field] = "is required"
    if vat_prefix and clean.get("fiscal_attribute") is None:
        clean["fiscal_attribute"] = "RO"  # "RO12433636" is a VAT payer's CUI
    start, end = clean.get("valid_from"), clean.get("valid_to")
    if start is not None and end is not None and start > end:
        errors["valid_to"] = "must not be before valid_from"
    if errors:
        raise InvalidFields(errors)
    if partial:
        return clean
    full = {field: clean.get(field, DEFAULTS.get(field)) for field in PROVIDER_FIELDS}
    full["code"] = full["code"] or full["cui"]
    return full


def apply_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The full provider after a PATCH: ``patch`` is validated partially, merged over
    ``current`` (a record :func:`validate_provider` returned), and the result validated
    whole, so that cross-field rules (valid_from <= valid_to) hold after the change."""
    merged = {**current, **validate_provider(patch, partial=True)}
    return validate_provider(merged)
