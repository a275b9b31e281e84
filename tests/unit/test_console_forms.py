"""The provider form and the API body, both ways; paging words."""
from __future__ import annotations

from services.console import forms

RECORD = {"id": "p1", "cas": "B", "cui": "12433636", "name": "SC DEMO MEDICAL SRL", "description": None,
          "code": "12433636", "cui_date": "2005-03-15", "org_type": "SRL", "fiscal_attribute": None,
          "fiscal_attribute_date": None, "trade_register_no": "J40/10/3456", "registered_on": None,
          "country": "ROM", "locality": "17913 Bucuresti", "currency": "RON", "print_order": 3,
          "valid_from": "2026-01-01", "valid_to": None, "work_point": None, "location_type": None,
          "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"}, "has_key": True}


def test_a_provider_is_shown_with_the_seeds_dates():
    values = forms.provider_values(RECORD)
    assert values["cui_date"] == "15-03-2005" and values["valid_to"] == "" and values["print_order"] == "3"
    assert values["rep_name"] == "Ion Popescu" and values["rep_cnp"] == "1800101221144"


def test_the_form_back_to_the_api_changes_only_what_the_clerk_changed():
    values = forms.provider_values(RECORD)
    body, problems = forms.provider_body(values)
    assert problems == {} and forms.provider_changes(RECORD, body) == {}
    values |= {"locality": "Cluj-Napoca", "valid_to": "31-12-2027", "rep_cnp": ""}
    body, problems = forms.provider_body(values)
    assert forms.provider_changes(RECORD, body) == {
        "locality": "Cluj-Napoca", "valid_to": "2027-12-31",
        "legal_representative": {"name": "Ion Popescu", "cnp": ""}}


def test_what_the_console_can_tell_by_itself():
    body, problems = forms.provider_body({"name": "X", "cui_date": "2005-31-12", "print_order": "trei"})
    assert set(problems) == {"cui_date", "print_order"} and "zz-ll-aaaa" in problems["cui_date"]
    assert body["legal_representative"] is None


def test_api_errors_land_on_the_form_inputs():
    assert forms.form_errors({"legal_representative.cnp": "is required", "cui": "is required"}) == {
        "rep_cnp": "este obligatoriu", "cui": "este obligatoriu"}


def test_which_key_button_applies():
    assert forms.has_key(RECORD) and not forms.has_key({**RECORD, "has_key": False})
    assert forms.has_key({"key_issued_at": "2026-01-01T00:00:00+00:00"}) and not forms.has_key({})


def test_paging_says_it_as_the_seed_does():
    assert forms.Paging.of({"total": 2647, "pages": 133}, 1, 20).summary == "Numarul total: 2647 (133 pagini)"
    assert forms.Paging.of({"total": 1}, 1, 20).summary == "Numarul total: 1 (1 pagina)"
    assert forms.Paging.of({"total": 0}, 1, 20).summary == "Numarul total: 0 (0 pagini)"
    assert forms.Paging.of({"total": 2647, "pages": 133, "page": 133}, 133, 20).window() == list(range(127, 134))
    assert forms.page_number("abc") == 1 and forms.page_number("0", 20) == 20
