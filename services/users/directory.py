"""Managing users ("Nou", "Modifica", "Sterge", roles): the rules applied to the tables.

Each function takes a connection and runs its own transaction; the scope rule is
shared.auth's: a user of another house does not exist for a county operator (404).

Deleting ("Sterge"), decided here:
- an internal user is removed (row and roles), and every live session of theirs is
  revoked; the audit trail keeps what they did. Nobody deletes their own account.
- an external user that still has certificates registered (not revoked) is refused
  with 409: its certificates would point at nobody. Without certificates it is removed
  and ExternalUserDeleted is published, so the OCSP service stops accepting its key;
  its key history stays. A later key for the provider (KeyIssued) creates it again.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg
from argon2 import PasswordHasher

from shared import errors
from shared.auth import Principal, ensure_house, may_act_for_house
from shared.events import ExternalUserDeleted
from shared.outbox import add_event
from shared.usernames import house_schema, org_unit

from services.users import queries
from services.users.accounts import Changes, NewUser, Role, check_role_grant, list_item, user_detail
from services.users.passwords import hash_password
from services.users.sessions import end_sessions


async def load_roles(conn: asyncpg.Connection) -> dict[str, Role]:
    """Every role by name."""
    return {r["name"]: Role(r["name"], r["description"], frozenset(r["rights"]))
            for r in await queries.fetch_roles(conn)}


async def _visible(conn: asyncpg.Connection, principal: Principal, username: str, *,
                   lock: bool = False) -> asyncpg.Record:
    fetch = queries.fetch_user_for_update if lock else queries.fetch_user
    row = await fetch(conn, username)
    if row is None:
        raise errors.NotFound(f"no such user: {username}")
    ensure_house(principal, row["cas"], what=f"user: {username}")
    return row


async def _manageable(conn: asyncpg.Connection, principal: Principal, username: str) -> asyncpg.Record:
    """The user, locked, if the caller may change it: visible, and holding no right the
    caller lacks (else resetting a national admin's password would be a way to become one)."""
    row = await _visible(conn, principal, username, lock=True)
    beyond = set(await queries.fetch_user_rights(conn, username)) - principal.rights
    if beyond:
        raise errors.Forbidden(f"{username} holds rights you do not hold ({', '.join(sorted(beyond))}); "
                               "only a user with all of them may change this account")
    return row


async def detail(conn: asyncpg.Connection, row: asyncpg.Record) -> dict:
    """The detail view of one user row."""
    if row["type"] == "internal":
        return user_detail(row, roles=await queries.fetch_user_roles(conn, row["username"]),
                           rights=await queries.fetch_user_rights(conn, row["username"]),
                           locked_until=await queries.account_locked_until(conn, row["username"]))
    return user_detail(row, roles=[], rights=[],
                       key_changes=await queries.fetch_key_changes(conn, row["username"]),
                       certificates=await queries.count_live_certificates(conn, row["username"]))


async def get_user(conn: asyncpg.Connection, principal: Principal, username: str) -> dict:
    """One user's detail, if the caller's house may see it (else 404)."""
    return await detail(conn, await _visible(conn, principal, username))


async def list_page(conn: asyncpg.Connection, *, cas: str | None, user_type: str | None,
                    q: str | None, limit: int, offset: int) -> tuple[int, list[dict]]:
    """(total, items of the page) of the users list."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if q:
            rows = await queries.search_users(conn, cas=cas, user_type=user_type, q=q, limit=limit,
                                              offset=offset)
            total = rows[0]["total"] if rows else await queries.count_users(
                conn, cas=cas, user_type=user_type, q=q)
        else:
            total = await queries.count_users(conn, cas=cas, user_type=user_type, q=None)
            rows = await queries.list_users(conn, cas=cas, user_type=user_type, limit=limit,
                                            offset=offset) if offset < total else []
    return total, [list_item(r) for r in rows]


async def create_user(conn: asyncpg.Connection, principal: Principal, new: NewUser,
                      hasher: PasswordHasher) -> dict:
    """Create a staff account of ``new.cas`` (county admins: their own house only)."""
    may_act_for_house(principal, new.cas)
    check_role_grant(user_type="internal", cas=new.cas, requested=new.roles,
                     known=await load_roles(conn), grantor_rights=principal.rights)
    password_hash = await hash_password(hasher, new.password)  # before the transaction: slow
    async with conn.transaction():
        created = await queries.insert_internal_user(
            conn, username=new.username, cas=new.cas, employee_code=new.employee_code,
            employee_name=new.employee_name, password_hash=password_hash, enabled=new.enabled,
            schema_name=house_schema(new.cas), org_unit=org_unit(new.cas))
        if not created:
            raise errors.Conflict(f"the user name {new.username} is already taken",
                                  errors={"username": "already taken"})
        await queries.insert_user_roles(conn, new.username, list(new.roles))
        return await detail(conn, await queries.fetch_user(conn, new.username))


async def update_user(conn: asyncpg.Connection, principal: Principal, username: str,
                      changes: Changes, hasher: PasswordHasher, now: datetime) -> dict:
    """Apply a PATCH. A new password, or disabling, ends the user's sessions."""
    new_password = changes.get("password")
    password_hash = await hash_password(hasher, new_password) if new_password else None
    async with conn.transaction():
        row = await _manageable(conn, principal, username)
        if row["type"] == "external":
            raise errors.Invalid("external users are made from their provider's activation key "
                                 "and cannot be modified here")
        enabled = changes.get("enabled", row["enabled"])
        if not enabled and username == principal.username:
            raise errors.Conflict("you cannot disable your own account")
        await queries.update_internal_user(
            conn, username, employee_code=changes.get("employee_code", row["employee_code"]),
            employee_name=changes.get("employee_name", row["employee_name"]), enabled=enabled,
            now=now)
        if password_hash or changes.get("unlock"):
            # A new password clears every lock of the account too, from every address.
            await queries.clear_account_locks(conn, username)
        if password_hash:
            await queries.set_password(conn, username, password_hash, now)
        if password_hash or (row["enabled"] and not enabled):
            await end_sessions(conn, username, row["cas"], now)
        return await detail(conn, await queries.fetch_user(conn, username))


async def delete_user(conn: asyncpg.Connection, principal: Principal, username: str,
                      now: datetime) -> str:
    """Delete a user (see the module's notes); returns its house, for the audit trail."""
    async with conn.transaction():
        row = await _manageable(conn, principal, username)
        if row["type"] == "internal":
            if username == principal.username:
                raise errors.Conflict("you cannot delete your own account")
            await queries.delete_user(conn, username)
            await end_sessions(conn, username, row["cas"], now)
            return row["cas"]
        certificates = await queries.count_live_certificates(conn, username)
        if certificates:
            raise errors.Conflict(
                f"{username} still has {certificates} certificate(s) registered; remove them "
                "(Certificate utilizatori) before deleting the user", certificates=certificates)
        await queries.delete_user(conn, username)
        await add_event(conn, ExternalUserDeleted(username=username), row["cas"])
        return row["cas"]


async def set_roles(conn: asyncpg.Connection, principal: Principal, username: str,
                    roles: tuple[str, ...], now: datetime) -> dict:
    """Replace a user's roles. Changed rights end their sessions, so they apply at once."""
    async with conn.transaction():
        row = await _manageable(conn, principal, username)
        check_role_grant(user_type=row["type"], cas=row["cas"], requested=roles,
                         known=await load_roles(conn), grantor_rights=principal.rights)
        before = set(await queries.fetch_user_roles(conn, username))
        if before != set(roles):
            await queries.delete_user_roles(conn, username)
            await queries.insert_user_roles(conn, username, list(roles))
            await end_sessions(conn, username, row["cas"], now)
        return await detail(conn, await queries.fetch_user(conn, username))
