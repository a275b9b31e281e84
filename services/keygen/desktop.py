"""Desktop activation (``POST /v1/activations``) against the tables: the rules of
``activation.py`` applied to the stored refusals, so a limit survives a restart.

A success and each counted refusal is stored in ``activation_attempts`` (for the limit
and for inquiries: which address tried which provider's old key, when) and logged,
never the serial; a typo was answered before this module is reached, and a refusal
while the address is at its limit is only counted in the metric.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from prometheus_client import Counter

from shared import errors, license
from shared.logging import get_logger
from shared.usernames import external_username

from services.keygen import queries
from services.keygen.activation import (GENERIC_REFUSAL, Attempt, Outcome, ThrottlePolicy,
                                        classify, network_of, retry_after, wait_message)

log = get_logger(__name__)

#: Every answer to an activation by what it came to: a rise in unknown-key or throttled
#: is someone guessing, replaced-key someone holding an old key. Counts, never serials.
ACTIVATIONS = Counter("siui_keygen_activations_total",
                      "Desktop activation attempts by outcome (ok, malformed, unknown-key, "
                      "replaced-key, wrong-house, throttled)", ["outcome"])
for _outcome in Outcome.ALL:
    ACTIVATIONS.labels(_outcome)  # every series exists from the start, at 0


def count_malformed() -> None:
    """A request refused before any lookup (400/422): counted, nothing stored."""
    ACTIVATIONS.labels(Outcome.MALFORMED).inc()


async def activate(conn: asyncpg.Connection, pepper: bytes, policy: ThrottlePolicy,
                   now: datetime, address: str, attempt: Attempt) -> dict[str, Any]:
    """The activation answer for a well-formed attempt; 403 (one message for every wrong
    key) or, from an address at its limit, 429 with the seconds to wait."""
    # The key's own index: a lookup, never a scan, and never the clear serial.
    key = await queries.find_key(conn, license.digest(attempt.serial, pepper))
    outcome = classify(key, attempt.cas)
    provider_id = str(key["provider_id"]) if key is not None else None
    network = network_of(address, policy)
    wait = None
    if outcome == Outcome.OK:  # the holder of the current key is never made to wait
        await queries.insert_attempt(conn, at=now, address=address, network=network,
                                     cas=attempt.cas, provider_id=provider_id, outcome=outcome,
                                     failed=False)
    else:
        async with conn.transaction():
            # Serialise one address's refusals: simultaneous guesses cannot all slip
            # under the limit.
            await queries.lock_throttle(conn, f"network:{network}")
            wait = retry_after(await queries.counted_refusal(
                conn, network, policy.since(now), policy.max_failures), policy, now)
            if wait is None:
                await queries.insert_attempt(conn, at=now, address=address, network=network,
                                             cas=attempt.cas, provider_id=provider_id,
                                             outcome=outcome, failed=True)
        if wait is not None:
            outcome = Outcome.THROTTLED
    ACTIVATIONS.labels(outcome).inc()
    if outcome == Outcome.THROTTLED:
        raise errors.TooManyRequests(wait_message(wait), retry_after=wait)
    log.info("activation_attempt", outcome=outcome, address=address, cas=attempt.cas,
             provider_id=provider_id)
    if outcome != Outcome.OK:
        raise errors.Forbidden(GENERIC_REFUSAL)
    return {"external_user": external_username(key["cui"], key["cas"]),
            "provider": {"cui": key["cui"], "name": key["name"]}, "cas": key["cas"]}


async def purge(conn: asyncpg.Connection, before: datetime) -> int:
    """Forget attempts older than ``before`` (the retention period); how many went."""
    return await queries.purge_attempts(conn, before)
