"""Providers between record, columns and JSON; the list's query; content negotiation."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from services.keygen import registry, views
from services.keygen.providers import validate_provider
from services.keygen.routes import wants_pdf
from shared import errors

RECORD = validate_provider({"cas": "B", "cui": "RO12433636", "name": "Clinica Sfânta Maria",
                            "valid_from": "2024-01-01",
                            "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"}})


def row(record: dict, **extra) -> dict:
    return {**views.to_columns(record), "id": "6f1c3a52-1111-4222-8333-444455556666",
            "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc), "created_by": "a",
            "updated_at": datetime(2026, 1, 2, tzinfo=timezone.utc), "updated_by": "b", **extra}


def test_columns_and_back_are_the_same_record():
    columns = views.to_columns(RECORD)
    assert columns["legal_representative_name"] == "Ion Popescu"
    assert columns["search_text"] == "clinica sfanta maria 12433636 12433636"
    assert views.to_record(row(RECORD)) == RECORD
    assert views.to_record(row({**RECORD, "legal_representative": None}))["legal_representative"] is None


def test_provider_json_has_the_current_key_and_never_a_digest():
    issued = datetime(2026, 2, 1, tzinfo=timezone.utc)
    keys = [{"id": "k1", "reset": False, "issued_at": issued, "issued_by": "x",
             "replaced_at": issued, "replaced_by": "y", "digest": b"secret"},
            {"id": "k2", "reset": True, "issued_at": issued, "issued_by": "y",
             "replaced_at": None, "replaced_by": None, "digest": b"secret"}]
    body = views.provider_json(row(RECORD), keys)
    assert (body["has_key"], body["key_id"], body["external_user"]) == (True, "k2", "12433636_CAS-B")
    assert body["valid_from"] == "2024-01-01" and body["created_at"].startswith("2026-01-01")
    assert "secret" not in repr(body) and "digest" not in repr(body)
    bare = views.provider_json(row(RECORD), [])
    assert (bare["has_key"], bare["key_id"], bare["external_user"]) == (False, None, None)


def test_search_pattern_folds_and_escapes():
    assert views.search_pattern(None) is None
    assert views.search_pattern("ȘTEFAN") == "%stefan%"
    assert views.search_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


def test_changes_name_old_and_new_values_as_json():
    after = {**RECORD, "name": "Alt nume", "valid_from": date(2025, 1, 1)}
    assert views.changes(RECORD, after) == {
        "name": {"old": "Clinica Sfânta Maria", "new": "Alt nume"},
        "valid_from": {"old": "2024-01-01", "new": "2025-01-01"}}
    assert views.changes(RECORD, dict(RECORD)) == {}




def test_list_query():
    query = registry.parse_list_query({"q": " farmacia ", "page": "2", "per_page": "50", "cas": "cj"})
    assert (query.q, query.page, query.per_page, query.cas, query.offset) == ("farmacia", 2, 50, "CJ", 50)
    assert registry.parse_list_query({}).per_page == 20
    with pytest.raises(errors.Invalid) as caught:
        registry.parse_list_query({"page": "0", "per_page": "7", "cas": "XX", "q": "\x00"})
    assert set(caught.value.errors) == {"page", "per_page", "cas", "q"}


def test_bad_ids_are_404():
    with pytest.raises(errors.NotFound):
        registry.parse_id("12")
    assert registry.parse_id("6F1C3A52-1111-4222-8333-444455556666") == "6f1c3a52-1111-4222-8333-444455556666"


@pytest.mark.parametrize(("accept", "pdf"), [
    ("application/pdf", True),
    ("application/pdf, */*", True),
    ("application/pdf;q=0.9, application/json;q=0.5", True),
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("application/json, application/pdf", False),
    ("application/pdf;q=0", False),
    ("application/pdf;q=oops", False),
    ("text/html, application/xhtml+xml", False),
])
def test_wants_pdf(accept, pdf):
    assert wants_pdf(accept) is pdf
