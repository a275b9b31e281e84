"""Events the users service acts on. Each runs inside the inbox's transaction, once per
event id (shared.inbox), and is idempotent by its own keys as well."""
from __future__ import annotations

import asyncpg

from shared.clock import utc_now
from shared.events import (CertificateRegistered, CertificateRevoked, Envelope, EventDecodeError,
                           ExternalUserCreated, KeyIssued, parse_time)
from shared.houses import is_house
from shared.outbox import add_event
from shared.service import Consumers
from shared.usernames import external_username, house_schema, org_unit

from services.users import queries


async def on_key_issued(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """A key was generated or reset at a house: its external user exists from now on.

    Created once (``on conflict do nothing``), announced once with ExternalUserCreated in
    the same transaction; a reset, or the same event again, only records the key change.
    """
    event: KeyIssued = envelope.payload()
    cas = envelope.cas
    if not is_house(cas):
        # Refused, not ignored: it waits in the dead-letter queue, where an operator sees it.
        raise EventDecodeError(f"KeyIssued {envelope.id} names no county house (cas={cas!r:.10})")
    username = event.external_user or external_username(event.cui, cas)
    created = await queries.insert_external_user(
        conn, username=username, cas=cas, schema_name=house_schema(cas), org_unit=org_unit(cas),
        provider_cui=event.cui, provider_code=event.provider_code, provider_name=event.provider_name)
    if created:
        await add_event(conn, ExternalUserCreated(
            username=username, cui=event.cui, provider_code=event.provider_code,
            provider_name=event.provider_name, schema=house_schema(cas), org_unit=org_unit(cas)), cas)
    else:
        # The provider may have been renamed since its first key.
        await queries.update_provider_fields(conn, username, event.provider_code,
                                             event.provider_name, utc_now())
    await queries.insert_key_change(conn, key_id=event.key_id, username=username, reset=event.reset,
                                    issued_at=parse_time(event.issued_at, "issued_at"), issued_by=event.issued_by)


async def on_certificate_registered(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """Count the certificate against its user: a user with certificates is not deleted."""
    event: CertificateRegistered = envelope.payload()
    await queries.record_certificate(conn, event.certificate_id, event.username,
                                     parse_time(event.changed_at, "changed_at"))


async def on_certificate_revoked(conn: asyncpg.Connection, envelope: Envelope) -> None:
    event: CertificateRevoked = envelope.payload()
    await queries.record_certificate_revoked(conn, event.certificate_id, event.username,
                                             parse_time(event.changed_at, "changed_at"))


CONSUMERS: Consumers = {
    "users.key-issued": {KeyIssued.TYPE: on_key_issued},
    "users.certs": {CertificateRegistered.TYPE: on_certificate_registered,
                    CertificateRevoked.TYPE: on_certificate_revoked},
}
