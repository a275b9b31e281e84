"""Provider validation: the seed's form fields, CUI/CNP check digits, dates, limits."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from stdnum.ro import cnp as stdnum_cnp
from stdnum.ro import cui as stdnum_cui

from services.keygen.providers import (
    ORG_TYPES,
    PROVIDER_FIELDS,
    InvalidFields,
    apply_patch,
    validate_provider,
)

CNP = "1760412010316"  # the seed's representative; valid check digit
SEED = {"cas": "B", "cui": "12433636", "name": "SCM PREDĂ BUZESCU"}


def errors_of(data: dict, **kwargs) -> dict[str, str]:
    with pytest.raises(InvalidFields) as caught:
        validate_provider(data, **kwargs)
    assert isinstance(caught.value, ValueError)
    return caught.value.errors


def test_the_seeds_provider_is_valid_with_defaults():
    assert stdnum_cui.is_valid("12433636") and stdnum_cui.is_valid("221120108")
    clean = validate_provider({**SEED, "valid_from": "1998-01-01", "org_type": "SCM",
                               "locality": "17913 București"})  # fmt: skip
    assert list(clean) == list(PROVIDER_FIELDS)
    assert clean["cas"] == "B" and clean["cui"] == "12433636"
    assert clean["code"] == "12433636"  # defaults to the CUI
    assert clean["country"] == "ROM" and clean["currency"] == "RON"
    assert clean["valid_from"] == date(1998, 1, 1)
    assert clean["name"] == "SCM PREDĂ BUZESCU"
    assert clean["description"] is None and clean["legal_representative"] is None


def test_a_full_provider():
    data = {
        "cas": "gj", "cui": "221120108", "name": "CMI Noiembrie", "description": "d",
        "code": "P-221120108", "cui_date": "2005-03-01", "org_type": "cmi",
        "fiscal_attribute": "ro", "fiscal_attribute_date": "2007-01-01",
        "trade_register_no": "J18/10/2005", "registered_on": "2005-03-02",
        "country": "rom", "locality": "Târgu Jiu", "currency": "eur", "print_order": 3,
        "valid_from": "2020-01-01", "valid_to": "2020-01-01", "work_point": "Str. Unirii 1",
        "location_type": "sediu", "legal_representative": {"name": "Popa", "cnp": CNP},
    }  # fmt: skip
    clean = validate_provider(data)
    assert clean["cas"] == "GJ" and clean["org_type"] == "CMI"
    assert clean["fiscal_attribute"] == "RO" and clean["country"] == "ROM"
    assert clean["currency"] == "EUR" and clean["print_order"] == 3
    assert clean["legal_representative"] == {"name": "Popa", "cnp": CNP}
    assert validate_provider(clean) == clean  # cleaning is idempotent
    assert clean["valid_to"] == date(2020, 1, 1)


@pytest.mark.parametrize("cui", ["RO12433636", "ro 12433636", "RO-12433636", " 12433636 "])
def test_cui_forms(cui):
    clean = validate_provider({**SEED, "cui": cui})
    assert clean["cui"] == "12433636" and clean["code"] == "12433636"
    assert clean["fiscal_attribute"] == ("RO" if "ro" in cui.lower() else None)


def test_ro_prefix_keeps_an_explicit_fiscal_attribute():
    clean = validate_provider({**SEED, "cui": "RO12433636", "fiscal_attribute": "R"})
    assert clean["fiscal_attribute"] == "R"


def test_a_cnp_as_the_providers_fiscal_code():
    assert validate_provider({**SEED, "cui": CNP})["cui"] == CNP
    assert "CNP" in errors_of({**SEED, "cui": "1760412010317"})["cui"]
    assert "RO prefix" in errors_of({**SEED, "cui": "RO" + CNP})["cui"]


@pytest.mark.parametrize(
    ("cui", "fragment"),
    [
        ("12433637", "check digit"),
        ("RO12433635", "check digit"),
        ("012433636", "not starting with 0"),
        ("1", "CUI"),
        ("12345678901", "CUI"),
        ("ABC", "CUI"),
        ("1243363X", "CUI"),
    ],
)
def test_bad_cuis(cui, fragment):
    assert fragment in errors_of({**SEED, "cui": cui})["cui"]


def _cnp_check_digit(first12: str) -> str:
    """The published CNP rule, written out independently of python-stdnum."""
    total = sum(int(d) * int(w) for d, w in zip(first12, "279146358279"))
    return "1" if total % 11 == 10 else str(total % 11)


def test_cnp_check_digits():
    assert stdnum_cnp.is_valid(CNP)
    for good in (CNP, "2850101400019", "5010101400010", "6031231123454"):
        assert _cnp_check_digit(good[:12]) == good[-1] and stdnum_cnp.is_valid(good)
        rep = {"name": "X", "cnp": good}
        assert validate_provider({**SEED, "legal_representative": rep})
    for digit in "0123456789":
        if digit != CNP[-1]:
            rep = {"name": "X", "cnp": CNP[:-1] + digit}
            message = errors_of({**SEED, "legal_representative": rep})
            assert message == {"legal_representative.cnp": (
                "is not a valid CNP: its check digit does not match")}  # fmt: skip
    for bad in ("1761312010316", "176041201031", "0760412010316", "12433636"):
        rep = {"name": "X", "cnp": bad}
        assert "legal_representative.cnp" in errors_of({**SEED, "legal_representative": rep})


def test_legal_representative_shape():
    errors = errors_of({**SEED, "legal_representative": {"cnp": CNP, "role": "x"}})
    assert errors == {"legal_representative.name": "is required",
                      "legal_representative.role": "unknown field"}  # fmt: skip
    errors = errors_of({**SEED, "legal_representative": "Popa"})
    assert errors == {"legal_representative": "must be an object, not string"}
    clean = validate_provider({**SEED, "legal_representative": None})
    assert clean["legal_representative"] is None


def test_required_fields_and_unknown_fields():
    assert errors_of({}) == {"cas": "is required", "cui": "is required", "name": "is required"}
    errors = errors_of({**SEED, "name": "  ", "colour": "red", "id": 4})
    assert errors == {"name": "is required", "colour": "unknown field", "id": "unknown field"}


@pytest.mark.parametrize(
    ("cas", "fragment"),
    [("CNAS", "CNAS does not register providers"), ("XX", "house code"),
     ("RO-CJ", "house code"), (7, "must be a string, not number")],
)  # fmt: skip
def test_cas_must_be_a_county_house(cas, fragment):
    assert fragment in errors_of({**SEED, "cas": cas})["cas"]


def test_wrong_types_are_named():
    errors = errors_of({**SEED, "name": 5, "description": ["x"], "print_order": "3",
                        "valid_from": 20200101, "locality": {"a": 1}, "code": True})  # fmt: skip
    assert errors == {
        "name": "must be a string, not number",
        "description": "must be a string, not array",
        "print_order": "must be an integer, not string",
        "valid_from": "must be a string, not number",
        "locality": "must be a string, not object",
        "code": "must be a string, not boolean",
    }
    assert errors_of({**SEED, "print_order": True}) == {
        "print_order": "must be an integer, not boolean"}  # fmt: skip


def test_dates():
    for bad, fragment in [("01-01-1998", "ISO 8601"), ("2020-02-30", "calendar date"),
                          ("2020-01-01T00:00:00", "ISO 8601"), ("1899-12-31", "1900"),
                          ("20200101", "ISO 8601")]:  # fmt: skip
        assert fragment in errors_of({**SEED, "cui_date": bad})["cui_date"], bad
    assert validate_provider({**SEED, "cui_date": date(2001, 2, 3)})["cui_date"] == date(
        2001, 2, 3
    )
    assert "cui_date" in errors_of({**SEED, "cui_date": datetime(2001, 2, 3)})


def test_validity_period():
    ok = validate_provider({**SEED, "valid_from": "2020-01-01", "valid_to": "2021-01-01"})
    assert ok["valid_to"] == date(2021, 1, 1)
    errors = errors_of({**SEED, "valid_from": "2021-01-02", "valid_to": "2021-01-01"})
    assert errors == {"valid_to": "must not be before valid_from"}


@pytest.mark.parametrize(
    ("given", "stored"),
    [("J40/10/3456", "J40/10/3456"), ("40/10/3456", "40/10/3456"),
     ("j5/123/1998", "J05/123/1998"), ("F12/3/05", "F12/3/05"),
     (" J40 / 10 / 2010 ", "J40/10/2010"), ("J2024001234400", "J2024001234400")],
)  # fmt: skip
def test_trade_register_numbers(given, stored):
    assert validate_provider({**SEED, "trade_register_no": given})["trade_register_no"] == stored


@pytest.mark.parametrize(
    "bad", ["J60/10/2010", "J00/10/2010", "X40/10/2010", "J40/10", "J40-10-2010",
            "40/10/123", "J40/10/2010/1", "J1800123456", "abc"],
)  # fmt: skip
def test_silly_trade_register_numbers(bad):
    assert "J40/10/3456" in errors_of({**SEED, "trade_register_no": bad})["trade_register_no"]


def test_org_types():
    assert {"SCM", "CMI", "SRL", "SA", "SNC", "PFA", "II", "spital", "farmacie",
            "laborator", "cabinet stomatologic"} <= set(ORG_TYPES)  # fmt: skip
    assert validate_provider({**SEED, "org_type": "Ingrijiri la Domiciliu"})[
        "org_type"] == "îngrijiri la domiciliu"  # fmt: skip
    assert errors_of({**SEED, "org_type": "SRLX"}) == {
        "org_type": "is not a known organisation type"}  # fmt: skip


def test_lengths_codes_and_text_hygiene():
    errors = errors_of({**SEED, "name": "x" * 201, "code": "a b", "country": "RO",
                        "currency": "LEI1", "locality": "a\x00b"})  # fmt: skip
    assert errors == {
        "name": "must be at most 200 characters",
        "code": "may hold only letters, digits and . / _ -",
        "country": "must be an ISO 3166 alpha-3 country code such as ROM",
        "currency": "must be an ISO 4217 currency code such as RON",
        "locality": "must not contain control characters",
    }
    clean = validate_provider({**SEED, "name": "  SCM Ştefan Ţepeş  "})
    assert clean["name"] == "SCM Ștefan Țepeș"  # cedilla look-alikes corrected, trimmed
    assert validate_provider({**SEED, "name": "x" * 200})["name"] == "x" * 200


def test_partial_validation_for_patch():
    assert validate_provider({"locality": "Cluj-Napoca"}, partial=True) == {
        "locality": "Cluj-Napoca"}  # fmt: skip
    assert validate_provider({"description": None}, partial=True) == {"description": None}
    assert errors_of({"name": None}, partial=True) == {"name": "is required"}
    assert errors_of({"cui": "12433637"}, partial=True).keys() == {"cui"}
    assert errors_of({"valid_from": "2021-02-01", "valid_to": "2021-01-01"},
                     partial=True) == {"valid_to": "must not be before valid_from"}  # fmt: skip


def test_apply_patch_checks_the_merged_record():
    current = validate_provider({**SEED, "valid_from": "2020-01-01"})
    updated = apply_patch(current, {"valid_to": "2022-12-31", "country": None})
    assert updated["valid_to"] == date(2022, 12, 31) and updated["country"] == "ROM"
    assert updated["cui"] == "12433636"
    with pytest.raises(InvalidFields) as caught:
        apply_patch(current, {"valid_to": "2019-12-31"})
    assert caught.value.errors == {"valid_to": "must not be before valid_from"}


def test_not_an_object():
    errors = errors_of([])  # type: ignore[arg-type]
    assert errors == {"": "the provider must be an object, not array"}


TEXT_FIELDS = ("name", "description", "locality", "work_point", "location_type", "code",
               "trade_register_no", "org_type", "country", "currency", "fiscal_attribute")


@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize(("bad", "words"), [
    ("\x00", "control characters"), ("\x1f", "control characters"),
    ("\ud800", "UTF-16"), ("\u202e", "text-direction"), ("\u2066", "text-direction"),
    ("\u200f", "text-direction"), ("\u200b", "invisible character"),
    ("\ufeff", "invisible character"), ("\u00ad", "invisible character"),
])
def test_every_text_field_refuses_controls_surrogates_bidi_and_invisible_characters(field, bad, words):
    value = {"code": "P1", "trade_register_no": "J40/10/3456", "org_type": "SRL",
             "country": "ROM", "currency": "RON", "fiscal_attribute": "RO"}.get(field, "Alfa")
    errors = errors_of({**SEED, field: value[:1] + bad + value[1:]})
    assert list(errors) == [field] and words in errors[field], errors


@pytest.mark.parametrize("bad", ["\u202e", "\u200b", "\ud800", "\x00"])
def test_the_representative_and_the_codes_refuse_them_too(bad):
    errors = errors_of({**SEED, "legal_representative": {"name": f"Ion{bad} Pop", "cnp": CNP + bad}})
    assert set(errors) == {"legal_representative.name", "legal_representative.cnp"}
    for field in ("cui", "cas"):
        assert field in errors_of({**SEED, field: SEED[field] + bad})
    assert "cui_date" in errors_of({**SEED, "cui_date": "2020-01-01" + bad})


def test_the_bidi_message_tells_the_operator_what_to_do():
    message = errors_of({**SEED, "name": "SC \u202eLRS AFLA"})["name"]
    assert message.startswith("contains an invisible text-direction control (U+202E RIGHT-TO-LEFT OVERRIDE)")
    assert "delete it" in message


def test_odd_field_names_are_named_escaped():
    assert errors_of({**SEED, "\ud800": 1, "legal_representative": {"name": "X", "cnp": CNP, "\x00": 2}}) == {
        "\\ud800": "unknown field", "legal_representative.\\x00": "unknown field"}


def test_dates_are_bounded_to_1900_2199():
    for field in ("cui_date", "fiscal_attribute_date", "registered_on", "valid_from", "valid_to"):
        for bad, words in (("9999-12-31", "after 2199"), ("2200-01-01", "after 2199"),
                           ("0001-01-01", "before 1900"), ("1899-12-31", "before 1900"),
                           ("٢٠٢٠-٠١-٠١", "YYYY-MM-DD")):
            assert words in errors_of({**SEED, field: bad})[field], (field, bad)
        for good in ("1900-01-01", "2199-12-31"):
            assert str(validate_provider({**SEED, field: good})[field]) == good
    assert "after 2199" in errors_of({**SEED, "valid_to": date(9999, 1, 1)})["valid_to"]


def test_print_order_is_bounded_even_when_too_long_to_read():
    from services.keygen.bodies import loads
    body = loads(b'{"print_order": 1' + b"0" * 5000 + b"}")
    assert errors_of({**SEED, **body}) == {"print_order": "must be between 0 and 1000000"}
    assert errors_of({**SEED, "print_order": 10 ** 4000}) == {"print_order": "must be between 0 and 1000000"}
    assert errors_of({**SEED, "print_order": -1}) == {"print_order": "must be between 0 and 1000000"}
    assert errors_of({**SEED, "print_order": float("inf")}) == {"print_order": "must be an integer, not number"}
    assert errors_of({**SEED, "name": body["print_order"]}) == {"name": "must be a string, not number"}
    assert validate_provider({**SEED, "print_order": 1_000_000})["print_order"] == 1_000_000


def test_far_too_long_texts_are_refused_before_any_work():
    assert errors_of({**SEED, "name": "x" * 100_000}) == {"name": "must be at most 200 characters"}
