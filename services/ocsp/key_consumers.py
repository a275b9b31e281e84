"""AMQP handlers of queue ``ocsp.keys``: keys issued (keygen) and external users created
or deleted (users). Each runs in the inbox transaction (shared.inbox), so a redelivered
event has no second effect; each change ends with a notification that makes every
process re-read the user's row (keys.KeySync)."""
from __future__ import annotations

from datetime import datetime, timezone

import asyncpg

from services.ocsp import keys
from services.ocsp import online_queries as oq
from shared.events import Envelope, EventDecodeError
from shared.inbox import Handler


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise EventDecodeError(f"not an ISO 8601 moment: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _house_of(username: str, envelope_cas: str) -> str:
    # The envelope names the house; the username (<CUI>_CAS-<cas>) does too, as a fallback.
    if envelope_cas:
        return envelope_cas.upper()
    return username.rpartition("_CAS-")[2].upper()


async def _save(conn: asyncpg.Connection, before: keys.KeyRecord | None, after: keys.KeyRecord) -> None:
    if after == before:
        return
    await oq.save_key(conn, username=after.username, cas=after.cas, provider_cui=after.provider_cui,
                      provider_name=after.provider_name, key_digest=after.key_digest,
                      issued_at=after.issued_at, previous_digests=after.previous_digests,
                      deleted_at=after.deleted_at)
    await oq.notify_key_changed(conn, after.username)


async def _current(conn: asyncpg.Connection, username: str) -> keys.KeyRecord | None:
    await oq.lock_user(conn, username)
    row = await oq.key_for_update(conn, username)
    return keys.KeyRecord.from_row(row) if row is not None else None


async def on_key_issued(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A key was generated or reset: it becomes the user's current key (if newest)."""
    event = envelope.payload()
    before = await _current(conn, event.external_user)
    after = keys.apply_key_issued(
        before, username=event.external_user, cas=_house_of(event.external_user, envelope.cas),
        provider_cui=event.cui, provider_name=event.provider_name, key_digest=event.key_digest,
        issued_at=_moment(event.issued_at))
    await _save(conn, before, after)


async def on_user_created(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An external user exists (normally right after its first key)."""
    event = envelope.payload()
    before = await _current(conn, event.username)
    after = keys.apply_user_created(
        before, username=event.username, cas=_house_of(event.username, envelope.cas),
        provider_cui=event.cui, provider_name=event.provider_name, at=_moment(envelope.occurred_at))
    await _save(conn, before, after)


async def on_user_deleted(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An external user was deleted: its connects answer unknown_user from now on."""
    event = envelope.payload()
    before = await _current(conn, event.username)
    after = keys.apply_user_deleted(before, username=event.username,
                                    cas=_house_of(event.username, envelope.cas),
                                    at=_moment(envelope.occurred_at))
    await _save(conn, before, after)


KEY_HANDLERS: dict[str, Handler] = {
    "KeyIssued": on_key_issued,
    "ExternalUserCreated": on_user_created,
    "ExternalUserDeleted": on_user_deleted,
}
