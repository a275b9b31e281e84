"""Issuing a key ("Generare parola" / "Resetare parola") against the tables, in one
transaction: the old key replaced, the new digest stored, KeyIssued in the outbox and,
when asked for, the signed agreement made — all or nothing. If the PDF cannot be
rendered or signed the transaction rolls back: no key is ever issued whose agreement
was not delivered.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pyhanko.sign import signers

from shared import errors
from shared.auth import Principal
from shared.clock import Clock
from shared.outbox import add_event

from services.keygen import keys, queries, registry
from services.keygen.activation import ThrottlePolicy
from services.keygen.agreement import DEFAULT_FONTS, AgreementData, signed_agreement
from services.keygen.fonts import FontChoice, fonts_for


@dataclass(frozen=True)
class KeyKit:
    """What issuing and checking keys needs, made once at start (see app.py)."""

    pepper: bytes
    signer: signers.Signer
    executor: Executor  # renders and signs agreements off the event loop
    clock: Clock
    policy: ThrottlePolicy
    # Tried in order: the fast Latin subset first, the full fonts for any other text.
    fonts: tuple[FontChoice, ...] = (FontChoice(DEFAULT_FONTS),)
    # Requests for a PDF wait here, before they take a database connection: each holds
    # its connection (and the provider's row lock) while its agreement is made, and
    # with only as many makers as worker threads the rest would just sit on the pool.
    pdf_gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    async def agreement(self, data: AgreementData) -> bytes:
        """The signed ``generatePassword.pdf`` for ``data``, made in a worker thread."""
        work = functools.partial(signed_agreement, data, self.signer,
                                 fonts=fonts_for(data, self.fonts))
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)


@dataclass(frozen=True)
class Issued:
    """A key just issued: the one moment its serial exists in clear."""

    key: keys.NewKey
    cas: str
    external_user: str
    pdf: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {"license_serial": self.key.serial, "key_id": self.key.key_id,
                "external_user": self.external_user, "issued_at": self.key.issued_at.isoformat()}


async def issue_key(conn: asyncpg.Connection, kit: KeyKit, principal: Principal,
                    provider_id: str, *, reset: bool, with_pdf: bool) -> Issued:
    """Generate (``reset`` false) or reset a provider's key; 404 for a provider the caller
    cannot see, 409 when the button does not fit the provider's state, 422 when its
    stored details hold characters the agreement must not print (correct them first)."""
    async with conn.transaction():
        # The row lock serialises issuing for one provider: of two simultaneous
        # "Generare parola" the second waits, then finds the first one's key (409).
        provider = await registry.visible(conn, principal, provider_id, lock=True)
        current = await queries.fetch_current_key(conn, provider_id)
        keys.check_issue(has_key=current is not None, reset=reset)
        keys.check_printable(provider)
        key = keys.new_key(kit.pepper, kit.clock())
        if current is not None:
            await queries.replace_key(conn, current["id"], key.issued_at, principal.username)
        try:
            await queries.insert_key(conn, key_id=key.key_id, provider_id=provider_id,
                                     digest=key.digest, reset=reset, issued_at=key.issued_at,
                                     issued_by=principal.username)
        except asyncpg.UniqueViolationError:  # the index behind the lock; never expected
            raise errors.Conflict(keys.GENERATE_WHEN_KEYED) from None
        event = keys.key_issued(provider, key, reset=reset, issued_by=principal.username)
        await add_event(conn, event, provider["cas"])
        pdf = await kit.agreement(keys.agreement_for(provider, key)) if with_pdf else None
    return Issued(key=key, cas=provider["cas"], external_user=event.external_user, pdf=pdf)
