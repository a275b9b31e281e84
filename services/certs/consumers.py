"""AMQP handlers of the certs service. Each runs inside the inbox transaction
(``shared.inbox``), so a redelivered event has no second effect."""
from __future__ import annotations

import asyncpg

from shared.events import (CertificateUsed, Envelope, ExternalUserCreated, ExternalUserDeleted, RenewalPresented,
                           parse_time)
from shared.logging import get_logger
from shared.service import Consumers

from . import queries, renewing
from .certificates import usage_batch

log = get_logger(__name__)


async def on_external_user_created(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """Keep the external user certificates may be registered to (queue certs.users)."""
    event = envelope.payload()
    cas = envelope.house_of(event.username)
    await queries.upsert_external_user(
        conn, username=event.username, cas=cas, provider_cui=event.cui,
        provider_code=event.provider_code or event.cui, provider_name=event.provider_name,
        schema=event.schema, org_unit=event.org_unit, event_at=_occurred(envelope))


async def on_external_user_deleted(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A deleted user keeps its certificates' history but gets no new certificate."""
    await queries.mark_external_user_deleted(conn, envelope.payload().username, _occurred(envelope))


async def on_certificate_used(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A batch of last uses from the OCSP service: one UPDATE for the whole batch."""
    usages = envelope.payload().usages
    ids, times = usage_batch(usages)
    if len(ids) != len(usages or ()):
        log.warning("certificate_usage_entries_skipped", skipped=len(usages or ()) - len(ids))
    if ids:
        await queries.record_usage(conn, ids, times)


async def on_renewal_presented(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A renewal the online channel saw presented (queue certs.renewals): recorded as
    pending, or approved at once where its house says so (``renewing``)."""
    event = envelope.payload()
    envelope.house_of(event.username)  # the event's house is the user's, or it is parked
    await renewing.record_presented(conn, event, _occurred(envelope))


def _occurred(envelope: Envelope):
    return parse_time(envelope.occurred_at, "occurred_at")


CONSUMERS: Consumers = {
    "certs.users": {ExternalUserCreated.TYPE: on_external_user_created,
                    ExternalUserDeleted.TYPE: on_external_user_deleted},
    "certs.usage": {CertificateUsed.TYPE: on_certificate_used},
    "certs.renewals": {RenewalPresented.TYPE: on_renewal_presented},
}
