"""The national admin, created on the first start of a deployment."""
from __future__ import annotations

import asyncpg
from argon2 import PasswordHasher

from shared.auth import NATIONAL
from shared.logging import get_logger

from services.users import queries
from shared.usernames import house_schema, org_unit
from services.users.passwords import generate_password, hash_password, make_hasher, password_problems

log = get_logger(__name__)

ADMIN_USERNAME = "admin"
ADMIN_ROLE = "national-admin"
ADMIN_NAME = "Administrator național"


async def ensure_national_admin(conn: asyncpg.Connection, password: str | None, *,
                                hasher: PasswordHasher | None = None) -> str | None:
    """Create ``admin`` (CNAS, national-admin) if missing, in the caller's transaction.

    With ``password`` (SIUI_ADMIN_PASSWORD) it is used and None returned; without, a
    strong one is generated and returned so that the caller shows it once. None too when
    the admin already exists (its password is never changed here), also when another
    process created it at the same moment.
    """
    if await queries.fetch_user(conn, ADMIN_USERNAME) is not None:
        return None
    generated = None
    if not password:
        generated = password = generate_password()
    elif password_problems(password, username=ADMIN_USERNAME):
        # The operator chose it explicitly; say so, but do not refuse to start.
        log.warning("admin_password_weak", problem=password_problems(password, username=ADMIN_USERNAME))
    password_hash = await hash_password(hasher or make_hasher(), password)
    created = await queries.insert_internal_user(
        conn, username=ADMIN_USERNAME, cas=NATIONAL, employee_code=None, employee_name=ADMIN_NAME,
        password_hash=password_hash, enabled=True, schema_name=house_schema(NATIONAL),
        org_unit=org_unit(NATIONAL))
    if not created:
        return None
    await queries.insert_user_roles(conn, ADMIN_USERNAME, [ADMIN_ROLE])
    return generated
