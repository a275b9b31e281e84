"""Desktop activation (``POST /v1/activations``) against the tables: every attempt is
stored in ``activation_attempts`` and logged (never the serial), and the throttle of
``activation.py`` decides from those rows, so a lock survives a restart.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared import errors, license
from shared.houses import is_house
from shared.logging import get_logger

from services.keygen import queries
from services.keygen.activation import GENERIC_REFUSAL, Outcome, classify, retry_after
from services.keygen.issuing import KeyKit
from shared.usernames import external_username

log = get_logger(__name__)
CAS_HINT = "is not an insurance house code (AB ... VN, B, OPSNAJ)"


@dataclass(frozen=True)
class Attempt:
    """A well-formed request: the canonical serial (its check character passed) and house."""

    serial: str
    cas: str

    def __repr__(self) -> str:  # never the serial, even in a traceback
        return f"Attempt(cas={self.cas!r})"


def parse_attempt(body: dict[str, Any]) -> Attempt:
    """The attempt in a body that has string ``license_serial`` and ``cas``; 422 naming
    each bad field. A typo is caught here by the check character, before any lookup."""
    problems: dict[str, str] = {}
    serial = ""
    try:
        serial = license.check(body["license_serial"])
    except license.MalformedSerial as exc:
        problems["license_serial"] = exc.reason
    cas = body["cas"].strip().upper()
    if not is_house(cas):
        problems["cas"] = CAS_HINT
    if problems:
        raise errors.Invalid("the licence serial or the house is not acceptable", errors=problems)
    return Attempt(serial, cas)


async def record_malformed(conn: asyncpg.Connection, kit: KeyKit, address: str,
                           cas: object, problem: errors.DomainError) -> None:
    """Store and log a request refused before any lookup (400/422)."""
    house = cas.strip().upper() if isinstance(cas, str) and is_house(cas.strip().upper()) else None
    await queries.insert_attempt(conn, at=kit.clock(), address=address, cas=house,
                                 provider_id=None, outcome=Outcome.MALFORMED, failed=True)
    log.info("activation_attempt", outcome=Outcome.MALFORMED, address=address, cas=house,
             fields=sorted(problem.errors) or None)


async def activate(conn: asyncpg.Connection, kit: KeyKit, address: str,
                   attempt: Attempt) -> dict[str, Any]:
    """The activation answer for a well-formed attempt, or 403 (one message for a wrong
    key or house) or 429 with the seconds to wait. The attempt is stored either way."""
    now, policy = kit.clock(), kit.policy
    async with conn.transaction():
        await queries.lock_throttle(conn, f"address:{address}")
        wait = retry_after(await queries.failures_by_address(
            conn, address, policy.since(now), policy.max_failures), policy, now)
        key = None
        if wait is None:
            # The key's own index: a lookup, never a scan, and never the clear serial.
            key = await queries.find_key(conn, license.digest(attempt.serial, kit.pepper))
            if key is not None:
                await queries.lock_throttle(conn, f"provider:{key['provider_id']}")
                wait = retry_after(await queries.failures_by_provider(
                    conn, key["provider_id"], policy.since(now), policy.max_failures), policy, now)
        outcome = Outcome.THROTTLED if wait is not None else classify(key, attempt.cas)
        provider_id = str(key["provider_id"]) if key is not None else None
        await queries.insert_attempt(conn, at=now, address=address, cas=attempt.cas,
                                     provider_id=provider_id, outcome=outcome,
                                     failed=outcome in Outcome.FAILURES)
    log.info("activation_attempt", outcome=outcome, address=address, cas=attempt.cas,
             provider_id=provider_id, retry_after=wait)
    if outcome == Outcome.THROTTLED:
        raise errors.TooManyRequests(_wait_message(wait), retry_after=wait)
    if outcome != Outcome.OK:
        raise errors.Forbidden(GENERIC_REFUSAL)
    return {"external_user": external_username(key["cui"], key["cas"]),
            "provider": {"cui": key["cui"], "name": key["name"]}, "cas": key["cas"]}


def _wait_message(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return (f"too many failed activation attempts; try again in {minutes} minute"
            f"{'s' if minutes != 1 else ''}")


async def purge(conn: asyncpg.Connection, before: datetime) -> None:
    """Forget attempts older than ``before`` (the retention period)."""
    await queries.purge_attempts(conn, before)
