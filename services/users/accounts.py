"""Users, roles and the users list: the rules, as plain functions of plain values.

Internal users are house staff: lower-case names, a house (``cas``), an employee code
and name, a password and roles. External users are providers' accounts
``<CUI>_CAS-<cas>``, made from KeyIssued; they have no password here, no roles, and never
log in.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared import errors
from shared.auth import NATIONAL, NATIONAL_RIGHTS
from shared.houses import is_house
from shared.paging import PageQuery, parse_page_query, raise_problems

from services.users.passwords import password_problems

USER_TYPES = {"all": None, "internal": "internal", "external": "external"}
EMPLOYEE_CODE_MAX = 32
EMPLOYEE_NAME_MAX = 200
# Starts with a letter, so it never looks like an external user (those start with a CUI).
USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,63}")
EMPLOYEE_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z./_-]*")
EXTERNAL_NO_ROLES = "external users have no roles or rights"


# --- the list -------------------------------------------------------------------------

@dataclass(frozen=True)
class ListQuery(PageQuery):
    user_type: str | None = None  # None: both


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """The users list's query parameters, or a 422 naming every bad one."""
    problems: dict[str, str] = {}
    kind = (params.get("type") or "all").strip().lower()
    if kind not in USER_TYPES:
        problems["type"] = "must be all, internal or external"
    query = parse_page_query(params, problems)
    raise_problems(problems)
    return ListQuery(**dataclasses.asdict(query), user_type=USER_TYPES.get(kind))


# --- internal users -------------------------------------------------------------------

@dataclass(frozen=True)
class NewUser:
    username: str
    password: str
    cas: str
    employee_code: str | None
    employee_name: str | None
    roles: tuple[str, ...]
    enabled: bool


@dataclass(frozen=True)
class Changes:
    """What a PATCH asks for; ``fields`` holds only the keys it sent."""

    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def validate_new_user(body: Mapping[str, Any]) -> NewUser:
    """A staff account from a POST body whose field types were already checked."""
    problems: dict[str, str] = {}
    username = str(body.get("username", "")).strip().lower()
    if not USERNAME.fullmatch(username):
        problems["username"] = ("must be 3 to 64 characters: a letter, then letters, digits, "
                                "'.', '_' or '-'")
    cas = str(body.get("cas", "")).strip().upper()
    if not is_house(cas, include_national=True):
        problems["cas"] = "is not a house code"
    code = _employee_code(body.get("employee_code"), problems)
    name = _employee_name(body.get("employee_name"), problems)
    password = body.get("password") or ""
    problem = password_problems(password, username=username, employee_code=code)
    if problem:
        problems["password"] = problem
    roles = _role_names(body.get("roles") or [], problems)
    if problems:
        raise errors.Invalid("some fields are not acceptable", errors=problems)
    return NewUser(username, password, cas, code, name, roles, bool(body.get("enabled", True)))


def validate_changes(body: Mapping[str, Any], *, username: str, employee_code: str | None) -> Changes:
    """The fields of a PATCH, cleaned; an empty PATCH is a 422."""
    problems: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if "employee_code" in body:
        fields["employee_code"] = _employee_code(body["employee_code"], problems)
    if "employee_name" in body:
        fields["employee_name"] = _employee_name(body["employee_name"], problems)
    if body.get("password") is not None:
        code = fields.get("employee_code", employee_code)
        problem = password_problems(body["password"], username=username, employee_code=code)
        if problem:
            problems["password"] = problem
        fields["password"] = body["password"]
    for flag in ("enabled", "unlock"):
        if body.get(flag) is not None:
            fields[flag] = body[flag]
    if problems:
        raise errors.Invalid("some fields are not acceptable", errors=problems)
    if not fields:
        raise errors.Invalid("nothing to change: send at least one field")
    return Changes(fields)


def _employee_code(raw: Any, problems: dict[str, str]) -> str | None:
    code = (raw or "").strip()
    if not code:
        return None
    if len(code) > EMPLOYEE_CODE_MAX or not EMPLOYEE_CODE.fullmatch(code):
        problems["employee_code"] = (f"must be at most {EMPLOYEE_CODE_MAX} letters, digits, "
                                     "'.', '/', '_' or '-'")
    return code


def _employee_name(raw: Any, problems: dict[str, str]) -> str | None:
    name = " ".join((raw or "").split())
    if len(name) > EMPLOYEE_NAME_MAX:
        problems["employee_name"] = f"must be at most {EMPLOYEE_NAME_MAX} characters"
    return name or None


def _role_names(raw: list, problems: dict[str, str]) -> tuple[str, ...]:
    if not all(isinstance(r, str) for r in raw):
        problems["roles"] = "must be a list of role names"
        return ()
    return tuple(dict.fromkeys(r.strip() for r in raw))  # de-duplicated, order kept


def parse_roles(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The role names of a PUT .../roles body whose type was already checked."""
    problems: dict[str, str] = {}
    roles = _role_names(body.get("roles") or [], problems)
    if problems:
        raise errors.Invalid("some fields are not acceptable", errors=problems)
    return roles


# --- roles ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    name: str
    description: str
    rights: frozenset[str]

    @property
    def national(self) -> bool:
        """Whether holding this role needs a CNAS account."""
        return bool(self.rights & NATIONAL_RIGHTS)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "rights": sorted(self.rights), "national": self.national}


def check_role_grant(*, user_type: str, cas: str, requested: tuple[str, ...],
                     known: Mapping[str, Role], grantor_rights: frozenset[str]) -> frozenset[str]:
    """Whether these roles may be given to this user by this grantor; returns the rights.

    External users hold none (422). Only CNAS users may hold national rights (422). And
    nobody grants a right they do not hold themselves (403): otherwise a users:write right
    would be every right.
    """
    if user_type == "external":
        raise errors.Invalid(f"{EXTERNAL_NO_ROLES}: they only send reports with their "
                             "activation key and certificate", errors={"roles": EXTERNAL_NO_ROLES})
    unknown = [r for r in requested if r not in known]
    if unknown:
        raise errors.Invalid("unknown role: " + ", ".join(unknown),
                             errors={"roles": "unknown role " + ", ".join(unknown)})
    national = [r for r in requested if known[r].national]
    if national and cas != NATIONAL:
        message = f"only CNAS users may hold national roles ({', '.join(national)})"
        raise errors.Invalid(message, errors={"roles": message})
    rights = frozenset().union(*(known[r].rights for r in requested))
    beyond = sorted(rights - grantor_rights)
    if beyond:
        raise errors.Forbidden("you cannot grant rights you do not hold yourself: " + ", ".join(beyond))
    return rights


# --- views ----------------------------------------------------------------------------

def list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row of "Lista utilizatorilor", as the contract shapes it."""
    return {"username": row["username"], "employee_code": row["employee_code"],
            "employee_name": row["employee_name"], "type": row["type"], "cas": row["cas"],
            "schema": row["schema_name"], "org_unit": row["org_unit"]}


def user_detail(row: Mapping[str, Any], *, roles: list[str], rights: list[str],
                key_changes: list[Mapping[str, Any]] = (), certificates: int = 0,
                locked_until: datetime | None = None) -> dict[str, Any]:
    """A user's detail: roles and rights for staff, the provider's fields for externals.
    ``locked_until``: the latest end of a lock of the account from one client address."""
    body = {**list_item(row), "enabled": row["enabled"], "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat()}
    if row["type"] == "internal":
        locked = locked_until
        body.update(roles=roles, rights=rights, locked_until=locked.isoformat() if locked else None)
    else:
        body.update(provider_cui=row["provider_cui"], provider_code=row["provider_code"],
                    provider_name=row["provider_name"], certificates=certificates,
                    key_changes=[{"key_id": k["key_id"], "reset": k["reset"],
                                  "issued_at": k["issued_at"].isoformat(), "issued_by": k["issued_by"]}
                                 for k in key_changes])
    return body
