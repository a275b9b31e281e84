"""shared.usernames: the external user's names, one rule for every service."""
from __future__ import annotations

import pytest

from shared.usernames import (ExternalName, external_username, house_of, house_schema, org_unit,
                              parse_external_username)


def test_the_seed_names():
    assert (external_username("12433636", "B"), house_schema("B"), org_unit("B")) == \
        ("12433636_CAS-B", "SIUIB", "CAS-B")
    assert org_unit("CNAS") == "CNAS" and house_schema("CNAS") == "SIUICNAS"
    assert external_username("1800101221144", "OPSNAJ") == "1800101221144_CAS-OPSNAJ"


def test_parsing_takes_apart_exactly_what_is_made():
    assert parse_external_username("12433636_CAS-B") == ExternalName("12433636", "B")
    assert str(parse_external_username("1800101221144_CAS-OPSNAJ")) == "1800101221144_CAS-OPSNAJ"


@pytest.mark.parametrize("name", [
    "admin", "12433636_CAS-b", "12433636_CAS-XX", "12433636_CAS-CNAS", "x12433636_CAS-B", "12433636_CAS-B ",
    "1_CAS-B", "12345678901234_CAS-B", "12433636-CAS-B", "12433636_CAS-B\n", "١٢٣٤_CAS-B", "", None, 12433636,
    "9" * 10_000 + "_CAS-B"])
def test_anything_else_is_not_an_external_user(name):
    assert parse_external_username(name) is None


def test_the_house_of_a_user_must_agree_with_what_an_event_claims():
    assert house_of("12433636_CAS-CJ") == "CJ"
    assert house_of("12433636_CAS-CJ", "CJ") == "CJ"
    with pytest.raises(ValueError, match="house"):
        house_of("12433636_CAS-CJ", "B")
    with pytest.raises(ValueError, match="not an external username"):
        house_of("12433636_CAS-ZZ")
