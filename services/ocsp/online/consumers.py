"""AMQP handlers of queue ``ocsp.keys``: keys issued (keygen) and external users created
or deleted (users). Each runs in the inbox transaction (shared.inbox), so a redelivered
event has no second effect; each change ends with a notification that makes every
process re-read the user's row (``keystore.KeySync``)."""
from __future__ import annotations

import asyncpg

import uuid

from services.ocsp.online import keys
from services.ocsp.online import queries as oq
from services.ocsp.online.refusals import Refusal
from shared.events import (Envelope, EventDecodeError, ExternalUserCreated, ExternalUserDeleted, KeyIssued,
                           RenewalRejected, parse_time)
from shared.inbox import Handler


async def _save(conn: asyncpg.Connection, before: keys.KeyRecord | None, after: keys.KeyRecord) -> None:
    if after == before:
        return
    await oq.save_key(conn, username=after.username, cas=after.cas, provider_cui=after.provider_cui,
                      provider_name=after.provider_name, key_digest=after.key_digest,
                      issued_at=after.issued_at, previous_digests=after.previous_digests,
                      deleted_at=after.deleted_at, previous_replaced_at=after.previous_replaced_at)
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
        before, username=event.external_user, cas=envelope.house_of(event.external_user),
        provider_cui=event.cui, provider_name=event.provider_name, key_digest=event.key_digest,
        issued_at=parse_time(event.issued_at, "issued_at"))
    await _save(conn, before, after)


async def on_user_created(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An external user exists (normally right after its first key)."""
    event = envelope.payload()
    before = await _current(conn, event.username)
    after = keys.apply_user_created(
        before, username=event.username, cas=envelope.house_of(event.username),
        provider_cui=event.cui, provider_name=event.provider_name, at=parse_time(envelope.occurred_at, "occurred_at"))
    await _save(conn, before, after)


async def on_user_deleted(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """An external user was deleted: its connects answer unknown_user from now on."""
    event = envelope.payload()
    before = await _current(conn, event.username)
    after = keys.apply_user_deleted(before, username=event.username,
                                    cas=envelope.house_of(event.username),
                                    at=parse_time(envelope.occurred_at, "occurred_at"))
    await _save(conn, before, after)


HANDLERS: dict[str, Handler] = {
    KeyIssued.TYPE: on_key_issued,
    ExternalUserCreated.TYPE: on_user_created,
    ExternalUserDeleted.TYPE: on_user_deleted,
}


async def on_renewal_rejected(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A house rejected a renewal (queue ``ocsp.renewals``): that certificate is answered
    renewal_rejected, with the house's reason, from now on."""
    event: RenewalRejected = envelope.payload()
    envelope.house_of(event.username)
    try:
        issuer_id, renewal_id, serial = uuid.UUID(event.issuer_id), uuid.UUID(event.renewal_id), int(event.serial)
    except (TypeError, ValueError):
        raise EventDecodeError(f"RenewalRejected {envelope.id}: unreadable ids or serial") from None
    row = await oq.save_refusal(conn, username=event.username, issuer_id=issuer_id, serial=serial,
                                renewal_id=renewal_id, reason=str(event.reason),
                                rejected_at=parse_time(event.rejected_at, "rejected_at"))
    if row is not None:
        await oq.notify_refusal(conn, Refusal.from_row(row).to_note())


RENEWAL_HANDLERS: dict[str, Handler] = {RenewalRejected.TYPE: on_renewal_rejected}

