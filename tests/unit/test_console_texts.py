"""Dates as the seed writes them and the services' messages in Romanian."""
from __future__ import annotations

import pytest

from services.console import texts


def test_dates_are_shown_dd_mm_yyyy_in_romanian_time():
    assert texts.show_date("2010-11-29") == "29-11-2010"
    # 23:30 UTC on 31 December is already 1 January in Bucharest.
    assert texts.show_date("2025-12-31T23:30:00+00:00") == "01-01-2026"
    assert texts.show_time("2026-07-01T09:00:00Z") == "01-07-2026 12:00:00"  # summer time
    assert texts.show_date(None) == "" and texts.show_time("") == ""


@pytest.mark.parametrize("typed, iso", [("29-11-2010", "2010-11-29"), ("1.2.2020", "2020-02-01"),
                                        ("01/02/2020", "2020-02-01"), ("2020-02-01", "2020-02-01"),
                                        ("", None), ("  ", None)])
def test_dates_typed_by_a_clerk(typed, iso):
    assert texts.parse_date(typed) == iso


@pytest.mark.parametrize("typed", ["31-02-2020", "29/11", "ieri", "2020-13-01"])
def test_a_date_that_is_not_one_says_how_to_write_it(typed):
    with pytest.raises(ValueError, match="zz-ll-aaaa"):
        texts.parse_date(typed)


def test_field_errors_in_romanian():
    assert texts.field_errors({"cui": "is not a valid CUI: its check digit does not match",
                               "name": "is required", "locality": "must be at most 100 characters"}) == {
        "cui": "nu este un CUI valid: cifra de control nu corespunde", "name": "este obligatoriu",
        "locality": "poate avea cel mult 100 caractere"}


def test_an_unknown_message_is_shown_as_written():
    assert texts.field_message("something new went wrong") == "something new went wrong"


def test_whole_answers_in_romanian():
    assert texts.detail_message("wrong user name or password", 401) == "Nume de utilizator sau parola gresita."
    assert "gestionate de CNAS" in texts.detail_message(
        "issuing authorities are managed by CNAS; a county house can only view them", 403)
    assert texts.detail_message("a brand new refusal", 409).startswith("Operatia nu este posibila")
    assert texts.detail_message(None, 503).startswith("Un serviciu nu este disponibil")


def test_a_refused_login_says_how_the_lock_works_but_not_whether_it_applies():
    detail = ("wrong user name or password (after 5 wrong passwords in a row from one address, "
              "that account cannot log in from there for 15 minutes)")
    message = texts.detail_message(detail, 401)
    assert message == ("Nume de utilizator sau parola gresita. Dupa 5 parole gresite la rand de la aceeasi "
                       "adresa, contul nu mai poate fi folosit de la acea adresa timp de 15 minute.")
    assert "blocat" not in message and "pana la" not in message
    assert not hasattr(texts, "locked_message")


def test_login_limits_say_when_to_try_again():
    assert texts.detail_message("too many login attempts from your address; try again in 70 s", 429) == \
        "Prea multe incercari de autentificare de la adresa dumneavoastra; reincercati peste 70 s."
    assert texts.detail_message("too many login attempts at the moment; try again in 1 s", 429) == \
        "Prea multe incercari de autentificare in acest moment; reincercati peste 1 s."
    assert texts.detail_message("too many logins are being checked at the moment; try again in 1 s", 503) == \
        "Serviciul de autentificare este ocupat; reincercati peste 1 s."
