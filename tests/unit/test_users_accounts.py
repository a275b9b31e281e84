"""users: list parameters and page arithmetic, new-user validation, role rules."""
from __future__ import annotations

import pytest

from services.users.accounts import Role, check_role_grant, parse_list_query, validate_changes, validate_new_user
from shared import errors
from shared.auth import ALL_RIGHTS, NATIONAL_RIGHTS
from shared.paging import page_count

ROLES = {
    "national-admin": Role("national-admin", "", frozenset(ALL_RIGHTS)),
    "house-admin": Role("house-admin", "", frozenset(ALL_RIGHTS) - NATIONAL_RIGHTS),
    "house-viewer": Role("house-viewer", "", frozenset({"users:read", "providers:read"})),
}


def test_page_arithmetic_matches_the_seed():
    assert page_count(2647, 20) == 133  # "Numarul total: 2647 (133 pagini)"
    assert page_count(1, 20) == 1       # "Numarul total: 1 (1 pagina)"
    assert page_count(40, 20) == 2
    assert page_count(0, 20) == 0


def test_list_query_defaults_and_values():
    query = parse_list_query({})
    assert (query.user_type, query.q, query.page, query.per_page, query.cas) == (None, None, 1, 20, None)
    query = parse_list_query({"type": "external", "q": " 12433636 ", "page": "3", "per_page": "50", "cas": "cj"})
    assert (query.user_type, query.q, query.page, query.per_page, query.cas) == ("external", "12433636", 3, 50, "CJ")
    assert query.offset == 100


def test_list_query_names_every_bad_parameter():
    with pytest.raises(errors.Invalid) as refused:
        parse_list_query({"type": "both", "page": "zero", "per_page": "25", "cas": "XX"})
    assert set(refused.value.errors) == {"type", "page", "per_page", "cas"}


def test_new_user_is_cleaned():
    new = validate_new_user({"username": " Ion.Popescu ", "password": "vara-la-munte-2026", "cas": "cj",
                             "employee_code": "E12", "employee_name": "  Ion   Popescu ",
                             "roles": ["house-viewer", "house-viewer"]})
    assert (new.username, new.cas, new.employee_name, new.roles, new.enabled) == (
        "ion.popescu", "CJ", "Ion Popescu", ("house-viewer",), True)


def test_new_user_names_every_bad_field():
    with pytest.raises(errors.Invalid) as refused:
        validate_new_user({"username": "1x", "password": "short", "cas": "ZZ", "employee_code": "a b",
                           "roles": [1]})
    assert set(refused.value.errors) == {"username", "password", "cas", "employee_code", "roles"}


def test_empty_patch_is_refused():
    with pytest.raises(errors.Invalid, match="nothing to change"):
        validate_changes({}, username="ion", employee_code=None)


def test_external_users_get_no_roles():
    with pytest.raises(errors.Invalid, match="external users have no roles or rights"):
        check_role_grant(user_type="external", cas="B", requested=(), known=ROLES, grantor_rights=frozenset(ALL_RIGHTS))


def test_national_roles_only_in_cnas():
    with pytest.raises(errors.Invalid, match="only CNAS"):
        check_role_grant(user_type="internal", cas="B", requested=("national-admin",), known=ROLES,
                         grantor_rights=frozenset(ALL_RIGHTS))
    rights = check_role_grant(user_type="internal", cas="CNAS", requested=("national-admin",), known=ROLES,
                              grantor_rights=frozenset(ALL_RIGHTS))
    assert rights == frozenset(ALL_RIGHTS)


def test_nobody_grants_more_than_they_hold():
    with pytest.raises(errors.Forbidden, match="issuers:write"):
        check_role_grant(user_type="internal", cas="CNAS", requested=("national-admin",), known=ROLES,
                         grantor_rights=ROLES["house-admin"].rights)


def test_unknown_role():
    with pytest.raises(errors.Invalid) as refused:
        check_role_grant(user_type="internal", cas="B", requested=("root",), known=ROLES,
                         grantor_rights=frozenset(ALL_RIGHTS))
    assert "root" in refused.value.errors["roles"]
