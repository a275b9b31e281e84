"""Providers ("Furnizori / Persoane juridice"): the rules applied to the tables.

Each function takes a connection; the scope rule is shared.auth's: a provider of another
house does not exist for a county operator (404), and one cannot be registered there (403).

Decided here:
- ``cas`` never changes: a provider's keys, external user and agreement belong to one
  house; a provider that contracts with another house is registered there too.
- the CUI may be corrected only while the provider never had a key: the external user
  ``<CUI>_CAS-<cas>`` is named after it, so afterwards a change would orphan that user.
- an edit that changes nothing writes no history and leaves ``updated_at`` alone.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from shared import errors
from shared.auth import Principal, ensure_house, may_act_for_house
from shared.paging import PageQuery, parse_page_query, raise_problems

from services.keygen import queries, views
from services.keygen.providers import InvalidFields, apply_patch, validate_provider

def parse_list_query(params: Mapping[str, str]) -> PageQuery:
    """The list's query parameters, or a 422 naming every bad one."""
    problems: dict[str, str] = {}
    query = parse_page_query(params, problems)
    raise_problems(problems)
    return query


def parse_id(text: str) -> str:
    """A provider id from the path; anything that is not a UUID names no provider (404)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise errors.NotFound("no such provider") from None


def validated(body: dict[str, Any], patch_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """The validated record from a POST body, or a PATCH body over ``patch_of`` (422)."""
    try:
        return validate_provider(body) if patch_of is None else apply_patch(patch_of, body)
    except InvalidFields as exc:
        raise errors.Invalid("some fields are not acceptable", errors=exc.errors) from None


async def visible(conn: asyncpg.Connection, principal: Principal, provider_id: str, *,
                  lock: bool = False) -> asyncpg.Record:
    """The provider row if the caller may see it (404 otherwise); ``lock`` holds it
    until the transaction ends."""
    fetch = queries.lock_provider if lock else queries.fetch_provider
    row = await fetch(conn, provider_id)
    if row is None:
        raise errors.NotFound("no such provider")
    ensure_house(principal, row["cas"], what="provider")
    return row


async def detail(conn: asyncpg.Connection, row: asyncpg.Record) -> dict[str, Any]:
    return views.provider_json(row, await queries.fetch_keys(conn, row["id"]))


async def _duplicate(conn: asyncpg.Connection, cas: str, cui: str) -> errors.Conflict:
    existing = await queries.find_provider_id(conn, cas, cui)
    return errors.Conflict(f"CUI/CNP {cui} is already registered at house {cas}",
                           errors={"cui": "already registered at this house"},
                           provider_id=existing)


async def create_provider(conn: asyncpg.Connection, principal: Principal,
                          body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Register a provider ("Nou"); returns its detail. 422 / 403 / 409 as the rules say."""
    record = validated(body)
    may_act_for_house(principal, record["cas"])
    provider_id = str(uuid.uuid4())
    async with conn.transaction():
        if not await queries.insert_provider(conn, provider_id, views.to_columns(record), now,
                                             principal.username):
            raise await _duplicate(conn, record["cas"], record["cui"])
        await queries.insert_history(conn, provider_id, now, principal.username, "created", {})
        return await detail(conn, await queries.fetch_provider(conn, provider_id))


async def update_provider(conn: asyncpg.Connection, principal: Principal, provider_id: str,
                          body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Apply a PATCH ("Modifica" / "Salveaza"), with a history row of what changed."""
    async with conn.transaction():
        row = await visible(conn, principal, provider_id, lock=True)
        if "cas" in body and str(body["cas"] or "").strip().upper() != row["cas"]:
            raise errors.Invalid("a provider stays with its house", errors={
                "cas": "cannot be changed: register the provider at the other house instead"})
        before = views.to_record(row)
        after = validated(body, patch_of=before)
        changed = views.changes(before, after)
        if not changed:
            return await detail(conn, row)
        if "cui" in changed and await queries.fetch_keys(conn, provider_id):
            raise errors.Conflict(
                "the CUI cannot be changed once the provider has had a key: its external user "
                "is named after it", errors={"cui": "cannot be changed after a key was issued"})
        try:
            async with conn.transaction():  # a savepoint: the duplicate check below still runs
                await queries.update_provider(conn, provider_id, views.to_columns(after), now,
                                              principal.username)
        except asyncpg.UniqueViolationError:
            raise await _duplicate(conn, row["cas"], after["cui"]) from None
        await queries.insert_history(conn, provider_id, now, principal.username, "updated",
                                     changed)
        return await detail(conn, await queries.fetch_provider(conn, provider_id))


async def list_page(conn: asyncpg.Connection, *, cas: str | None, q: str | None, limit: int,
                    offset: int) -> tuple[int, list[dict[str, Any]]]:
    """(total, items of the page) of the providers list."""
    pattern = views.search_pattern(q)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        total = await queries.count_providers(conn, cas=cas, pattern=pattern)
        rows = (await queries.list_providers(conn, cas=cas, pattern=pattern, limit=limit,
                                             offset=offset)) if offset < total else []
    return total, [views.list_item(r) for r in rows]


async def key_history(conn: asyncpg.Connection, principal: Principal,
                      provider_id: str) -> list[dict[str, Any]]:
    """Every key issued for the provider, oldest first: who issued or reset it, when,
    and for the old ones who replaced them and when (``views.key_json``)."""
    await visible(conn, principal, provider_id)
    return [views.key_json(r) for r in await queries.fetch_keys(conn, provider_id)]


async def history(conn: asyncpg.Connection, principal: Principal,
                  provider_id: str) -> list[dict[str, Any]]:
    """Who created and changed the provider, and what, oldest first."""
    await visible(conn, principal, provider_id)
    return [views.history_json(r) for r in await queries.fetch_history(conn, provider_id)]
