"""SQL of the users service: one function per statement; the caller owns the transaction.

Tables are named unqualified: the pool's search_path starts with the ``users`` schema.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

USER_COLUMNS = """username, type, cas, employee_code, employee_name, password_hash, enabled,
                  schema_name, org_unit, provider_cui, provider_code, provider_name,
                  created_at, updated_at"""
LIST_COLUMNS = "username, employee_code, employee_name, type, cas, schema_name, org_unit"
TRIGRAM = 3  # the shortest search the trigram index can answer


# --- users ----------------------------------------------------------------------------

async def fetch_user(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {USER_COLUMNS} from users where username = $1", username)


async def fetch_user_for_update(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    """The user row, locked until the transaction ends (serialises logins of one account)."""
    return await conn.fetchrow(f"select {USER_COLUMNS} from users where username = $1 for update",
                               username)


async def insert_internal_user(conn: asyncpg.Connection, *, username: str, cas: str,
                               employee_code: str | None, employee_name: str | None,
                               password_hash: str, enabled: bool, schema_name: str,
                               org_unit: str) -> bool:
    """Insert a staff account; False if the user name is taken."""
    return bool(await conn.fetchval(
        """insert into users (username, type, cas, employee_code, employee_name, password_hash,
                              enabled, schema_name, org_unit)
           values ($1, 'internal', $2, $3, $4, $5, $6, $7, $8)
           on conflict (username) do nothing returning true""",
        username, cas, employee_code, employee_name, password_hash, enabled, schema_name, org_unit))


async def insert_external_user(conn: asyncpg.Connection, *, username: str, cas: str,
                               schema_name: str, org_unit: str, provider_cui: str,
                               provider_code: str, provider_name: str) -> bool:
    """Insert a provider's account; False if it already exists (the event came again)."""
    return bool(await conn.fetchval(
        """insert into users (username, type, cas, schema_name, org_unit, provider_cui,
                              provider_code, provider_name)
           values ($1, 'external', $2, $3, $4, $5, $6, $7)
           on conflict (username) do nothing returning true""",
        username, cas, schema_name, org_unit, provider_cui, provider_code, provider_name))


async def update_provider_fields(conn: asyncpg.Connection, username: str, provider_code: str,
                                 provider_name: str, now: datetime) -> None:
    await conn.execute(
        """update users set provider_code = $2, provider_name = $3, updated_at = $4
           where username = $1 and type = 'external'
             and (provider_code, provider_name) is distinct from ($2, $3)""",
        username, provider_code, provider_name, now)


async def update_internal_user(conn: asyncpg.Connection, username: str, *, employee_code: str | None,
                               employee_name: str | None, enabled: bool, now: datetime) -> None:
    await conn.execute(
        """update users set employee_code = $2, employee_name = $3, enabled = $4, updated_at = $5
           where username = $1""",
        username, employee_code, employee_name, enabled, now)


async def set_password(conn: asyncpg.Connection, username: str, password_hash: str,
                       now: datetime) -> None:
    """(The caller clears the account's locks too: ``clear_account_locks``.)"""
    await conn.execute("update users set password_hash = $2, updated_at = $3 where username = $1",
                       username, password_hash, now)


async def rehash_password(conn: asyncpg.Connection, username: str, password_hash: str) -> None:
    """Store a stronger hash of the same password (argon2 parameters were raised)."""
    await conn.execute("update users set password_hash = $2 where username = $1",
                       username, password_hash)


async def delete_user(conn: asyncpg.Connection, username: str) -> bool:
    return await conn.fetchval("delete from users where username = $1 returning true", username) is not None


def _list_filters(cas: str | None, user_type: str | None, q: str | None) -> tuple[str, list]:
    """The where clause of the users list, from fixed fragments only, and its arguments.

    Composed per call rather than ``($1 is null or cas = $1)``: a generic prepared plan
    cannot use an index for such optional predicates, and the list must stay fast.
    """
    clauses, args = [], []
    if cas is not None:
        args.append(cas)
        clauses.append(f"cas = ${len(args)}")
    if user_type is not None:
        args.append(user_type)
        clauses.append(f"type = ${len(args)}")
    if q and len(q) >= TRIGRAM:
        # LIKE's wildcards are escaped: '_' is in every external user name.
        pattern = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args.append(f"%{pattern}%")
        clauses.append(f"search_text like ${len(args)}")
    elif q:
        # One or two characters make no trigram: a generic plan might still read the whole
        # GIN index (~80 ms at 100k); strpos() cannot use it, so it is a scan or the house range.
        args.append(q.lower())
        clauses.append(f"strpos(search_text, ${len(args)}) > 0")
    return (" where " + " and ".join(clauses)) if clauses else "", args


async def count_users(conn: asyncpg.Connection, *, cas: str | None, user_type: str | None,
                      q: str | None) -> int:
    where, args = _list_filters(cas, user_type, q)
    return await conn.fetchval(f"select count(*) from users{where}", *args)


async def list_users(conn: asyncpg.Connection, *, cas: str | None, user_type: str | None,
                     limit: int, offset: int) -> list[asyncpg.Record]:
    """One page of the list without a search, ordered by user name (unique: stable)."""
    where, args = _list_filters(cas, user_type, None)
    n = len(args)
    return await conn.fetch(
        f"select {LIST_COLUMNS} from users{where} order by username limit ${n + 1} offset ${n + 2}",
        *args, limit, offset)


async def search_users(conn: asyncpg.Connection, *, cas: str | None, user_type: str | None, q: str,
                       limit: int, offset: int) -> list[asyncpg.Record]:
    """One page of the matches of ``q``, each row with ``total`` (no rows: past the end).

    The matches are gathered once, then counted and sorted. Left to itself the planner
    walks the username index hoping to meet a page of matches early; staff names sort
    after every CUI, so a search for a name read 90% of the table (40 ms at 100k).
    """
    where, args = _list_filters(cas, user_type, q)
    n = len(args)
    return await conn.fetch(
        f"""with matches as materialized (select {LIST_COLUMNS} from users{where})
            select {LIST_COLUMNS}, count(*) over () as total from matches
            order by username limit ${n + 1} offset ${n + 2}""",
        *args, limit, offset)


# --- roles ----------------------------------------------------------------------------

async def fetch_roles(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every role with its rights (sorted), by name."""
    return await conn.fetch(
        """select r.name, r.description,
                  array(select rr.right_name from role_rights rr where rr.role = r.name
                        order by rr.right_name) as rights
           from roles r order by r.name""")


async def fetch_user_roles(conn: asyncpg.Connection, username: str) -> list[str]:
    return [r["role"] for r in await conn.fetch(
        "select role from user_roles where username = $1 order by role", username)]


async def fetch_user_rights(conn: asyncpg.Connection, username: str) -> list[str]:
    return [r["right_name"] for r in await conn.fetch(
        """select distinct rr.right_name from user_roles ur
           join role_rights rr on rr.role = ur.role
           where ur.username = $1 order by rr.right_name""", username)]


async def delete_user_roles(conn: asyncpg.Connection, username: str) -> None:
    await conn.execute("delete from user_roles where username = $1", username)


async def insert_user_roles(conn: asyncpg.Connection, username: str, roles: list[str]) -> None:
    await conn.execute(
        "insert into user_roles (username, role) select $1, unnest($2::text[]) on conflict do nothing",
        username, roles)


# --- sessions -------------------------------------------------------------------------

async def insert_session(conn: asyncpg.Connection, jti: str, username: str, issued_at: datetime,
                         expires_at: datetime) -> None:
    await conn.execute(
        "insert into sessions (jti, username, issued_at, expires_at) values ($1, $2, $3, $4)",
        jti, username, issued_at, expires_at)


async def revoke_session(conn: asyncpg.Connection, jti: str, username: str, issued_at: datetime,
                         expires_at: datetime, now: datetime) -> None:
    """Mark one session revoked; a token this service has no row for gets one, revoked."""
    await conn.execute(
        """insert into sessions (jti, username, issued_at, expires_at, revoked_at)
           values ($1, $2, $3, $4, $5)
           on conflict (jti) do update set revoked_at = coalesce(sessions.revoked_at, excluded.revoked_at)""",
        jti, username, issued_at, expires_at, now)


async def revoke_user_sessions(conn: asyncpg.Connection, username: str,
                               now: datetime) -> list[asyncpg.Record]:
    """Revoke every live session of a user; returns the revoked (jti, expires_at)."""
    return await conn.fetch(
        """update sessions set revoked_at = $2
           where username = $1 and revoked_at is null and expires_at > $2
           returning jti, expires_at""", username, now)


async def session_revoked(conn: asyncpg.Connection, jti: str) -> bool:
    return bool(await conn.fetchval(
        "select revoked_at is not null from sessions where jti = $1", jti))


async def revoked_unexpired(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Token ids that were revoked and would otherwise still be accepted."""
    return await conn.fetch(
        "select jti, expires_at from sessions where revoked_at is not null and expires_at > $1 "
        "order by expires_at", now)


async def purge_sessions(conn: asyncpg.Connection, before: datetime) -> int:
    """Forget sessions that ended before ``before``: their tokens are refused by expiry."""
    status = await conn.execute("delete from sessions where expires_at < $1", before)
    return int(status.split()[-1])


# --- logging in: attempts per address, lockout per (account, address) -----------------

async def address_window_counts(conn: asyncpg.Connection, address: str,
                                windows: list[datetime]) -> dict[datetime, int]:
    """Attempts from ``address`` counted in each of these windows (absent: none)."""
    rows = await conn.fetch(
        "select window_start, attempts from login_windows where address = $1 and window_start = any($2::timestamptz[])",
        address, windows)
    return {r["window_start"]: r["attempts"] for r in rows}


async def count_address_attempt(conn: asyncpg.Connection, address: str, window_start: datetime,
                                cap: int) -> int | None:
    """Count one attempt from ``address`` in this window if it holds fewer than ``cap``:
    the new count, or None (full: not counted). One statement, so replicas never both
    take the last place."""
    return await conn.fetchval(
        """insert into login_windows (address, window_start, attempts) select $1, $2, 1 where $3 > 0
           on conflict (address, window_start) do update set attempts = login_windows.attempts + 1
           where login_windows.attempts < $3
           returning attempts""",
        address, window_start, cap)


async def lock_login_failures(conn: asyncpg.Connection, username: str, address: str) -> asyncpg.Record:
    """The (user name, address) pair's failures and lock, the row made if missing and
    locked until the transaction ends (parallel attempts on one pair take turns)."""
    return await conn.fetchrow(
        """insert into login_failures (username, address) values ($1, $2)
           on conflict (username, address) do update set username = excluded.username
           returning failed_logins, locked_until""",
        username, address)


async def set_login_failures(conn: asyncpg.Connection, username: str, address: str, failed_logins: int,
                             locked_until: datetime | None, now: datetime) -> None:
    await conn.execute(
        """update login_failures set failed_logins = $3, locked_until = $4, updated_at = $5
           where username = $1 and address = $2""",
        username, address, failed_logins, locked_until, now)


async def clear_login_failures(conn: asyncpg.Connection, username: str, address: str) -> None:
    """A correct password from ``address``: that pair starts again from nothing."""
    await conn.execute("delete from login_failures where username = $1 and address = $2",
                       username, address)


async def clear_account_locks(conn: asyncpg.Connection, username: str) -> None:
    """An admin's unlock or a new password: the account's failures from every address go."""
    await conn.execute("delete from login_failures where username = $1", username)


async def account_locked_until(conn: asyncpg.Connection, username: str) -> datetime | None:
    """The latest end of a lock of this account from any one address (may be past)."""
    return await conn.fetchval("select max(locked_until) from login_failures where username = $1",
                               username)


async def purge_login_throttle(conn: asyncpg.Connection, *, windows_before: datetime,
                               failures_before: datetime) -> None:
    """Forget windows no limit reads any more, and failures (and ended locks) of pairs
    not tried since ``failures_before``."""
    await conn.execute("delete from login_windows where window_start < $1", windows_before)
    await conn.execute(
        """delete from login_failures
           where updated_at < $1 and (locked_until is null or locked_until < $1)""",
        failures_before)


# --- what events tell -----------------------------------------------------------------

async def insert_key_change(conn: asyncpg.Connection, *, key_id: str, username: str, reset: bool,
                            issued_at: datetime, issued_by: str) -> bool:
    return bool(await conn.fetchval(
        """insert into key_changes (key_id, username, reset, issued_at, issued_by)
           values ($1, $2, $3, $4, $5) on conflict (key_id) do nothing returning true""",
        key_id, username, reset, issued_at, issued_by))


async def fetch_key_changes(conn: asyncpg.Connection, username: str, limit: int = 20) -> list[asyncpg.Record]:
    return await conn.fetch(
        """select key_id, reset, issued_at, issued_by from key_changes where username = $1
           order by issued_at desc, key_id limit $2""", username, limit)


async def record_certificate(conn: asyncpg.Connection, certificate_id: str, username: str,
                             changed_at: datetime) -> None:
    """A certificate was registered; never resurrects one already known as revoked."""
    await conn.execute(
        """insert into user_certificates (certificate_id, username, status, changed_at)
           values ($1, $2, 'active', $3) on conflict (certificate_id) do nothing""",
        certificate_id, username, changed_at)


async def record_certificate_revoked(conn: asyncpg.Connection, certificate_id: str, username: str,
                                     changed_at: datetime) -> None:
    await conn.execute(
        """insert into user_certificates (certificate_id, username, status, changed_at)
           values ($1, $2, 'revoked', $3)
           on conflict (certificate_id) do update set status = 'revoked', changed_at = excluded.changed_at""",
        certificate_id, username, changed_at)


async def count_live_certificates(conn: asyncpg.Connection, username: str) -> int:
    return await conn.fetchval(
        "select count(*) from user_certificates where username = $1 and status <> 'revoked'", username)
