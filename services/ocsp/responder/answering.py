"""Answering an OCSP request: the responder's domain, free of HTTP.

The chain, cheapest first (Boulder's "sources"): decode → filter unknown issuers
(``unauthorized``) → the pre-signed answers every responder shares (``presigned``) →
this process's cache of answers it signed itself → live signing behind a bounded queue
(``tryLater`` when it is full). Nothing here touches the database: the registry and the
pre-signed answers are in memory and kept current by ``services.ocsp.state``.

A request whose pre-signed answer is of an older state (the change has arrived, its new
answer is being signed by the presigner) waits for that answer, at most
``presign_wait`` seconds, rather than signing one of its own: a change of state costs
the request path no signature, and every worker still serves the same bytes.

The signer's life bounds every answer: nextUpdate is never past its certificate's
notAfter, a signer outside its validity signs nothing (``unauthorized``: RFC 6960 §2.3,
the responder cannot answer authoritatively, and no client would accept the
signature), and at the configured switch time the next responder identity takes over
(``Responder.switch_signer``) with the cache of the old one's answers dropped.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.clock import Clock, utc_now

from services.ocsp.responder.codec import CertId, MalformedRequest, ParsedRequest, parse_request
from services.ocsp.responder.presigned import (CERT_ID, DER, ETAG, NEXT_UPDATE, PRODUCED_AT, SIGNER, STATE,
                                              PresignedAnswer, PresignedStore, state_of)
from services.ocsp.responder.registry import CachedResponse, Lookup, Registry, ResponseCache
from services.ocsp.responder.responses import ResponderIdentity, build_response, error_response
from services.ocsp.responder.signing_keys import SignerUnavailable

MALFORMED = error_response("malformed_request")
UNAUTHORIZED = error_response("unauthorized")
TRY_LATER = error_response("try_later")
INTERNAL_ERROR = error_response("internal_error")
PARSED_MEMO = 10_000  # parsed requests kept (a few hundred bytes each)
#: How long after a change a request may wait for the change's pre-signed answer
#: (seconds): past it the presigner is taken to be away, and answers are signed live.
STALE_WINDOW = 5.0
STALE_MEMO = 10_000  # CertIDs whose pre-signed answer was seen stale (bounded, as above)


class Overloaded(Exception):
    """More answers are waiting to be signed than the configured bound."""


class SigningQueue:
    """Live signing with a bounded wait: at most ``max_pending`` answers wait, the rest are shed.

    Signing is CPU work on the event loop's thread, so an ``asyncio.Semaphore`` around
    it would never see a waiter. Instead jobs queue here and are signed ``batch`` at a
    time in a callback scheduled after the requests already ready to run: the queue's
    length is the real backlog, a request beyond ``max_pending`` is refused at once,
    and between batches the loop serves cached answers and health checks.
    """

    def __init__(self, max_pending: int, batch: int):
        if max_pending < 1 or batch < 1:
            raise ValueError("max_pending and batch must be at least 1")
        self.max_pending = max_pending
        self.batch = batch
        self._jobs: deque[tuple[Callable[[], bytes], asyncio.Future]] = deque()
        self._scheduled = False
        # Jobs for executors (an HSM's thread), under the same bound: each executor takes
        # them a batch at a time, one thread hand-off per batch rather than per answer.
        self._offloop: dict[Executor, deque[tuple[Callable[[], bytes], asyncio.Future]]] = {}
        self._offloop_running: set[Executor] = set()
        self._elsewhere = 0

    @property
    def pending(self) -> int:
        return len(self._jobs) + self._elsewhere

    def submit_to(self, executor: Executor, job: Callable[[], bytes]) -> asyncio.Future:
        """Queue ``job`` for ``executor`` (a signer that blocks: an HSM), bounded like
        ``submit``; raise ``Overloaded`` when ``max_pending`` jobs already wait."""
        if self.pending >= self.max_pending:
            raise Overloaded()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._offloop.setdefault(executor, deque()).append((job, future))
        self._elsewhere += 1
        if executor not in self._offloop_running:
            self._offloop_running.add(executor)
            self._send_batch(loop, executor)
        return future

    def _send_batch(self, loop: asyncio.AbstractEventLoop, executor: Executor) -> None:
        queue = self._offloop[executor]
        batch = []
        while queue and len(batch) < self.batch:
            job, future = queue.popleft()
            if future.cancelled():  # the client went away while waiting: skip the work
                self._elsewhere -= 1
                continue
            batch.append((job, future))
        if not batch:
            self._offloop_running.discard(executor)
            return
        done = executor.submit(_run_jobs, [job for job, _ in batch])
        done.add_done_callback(lambda ran: loop.call_soon_threadsafe(self._batch_done, loop, executor, batch, ran))

    def _batch_done(self, loop, executor: Executor, batch, ran) -> None:
        outcomes = ran.result() if ran.exception() is None else [(False, ran.exception())] * len(batch)
        for (_, future), (ok, value) in zip(batch, outcomes):
            self._elsewhere -= 1
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        self._send_batch(loop, executor)

    def submit(self, job: Callable[[], bytes]) -> asyncio.Future:
        """Queue ``job`` (it returns the signed DER); raise ``Overloaded`` when the queue is full."""
        if self.pending >= self.max_pending:
            raise Overloaded()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.append((job, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._run_batch)
        return future

    def _run_batch(self) -> None:
        jobs = self._jobs
        for _ in range(min(self.batch, len(jobs))):
            job, future = jobs.popleft()
            if future.cancelled():  # the client went away while waiting: skip the work
                continue
            try:
                future.set_result(job())
            except Exception as exc:  # handed to the waiting request, which answers internalError
                future.set_exception(exc)
        if jobs:
            asyncio.get_running_loop().call_soon(self._run_batch)
        else:
            self._scheduled = False


def _run_jobs(jobs: list[Callable[[], bytes]]) -> list[tuple[bool, object]]:
    """On the executor's thread: each job's signed DER, or its exception."""
    outcomes: list[tuple[bool, object]] = []
    for job in jobs:
        try:
            outcomes.append((True, job()))
        except Exception as exc:  # handed to the waiting request (tryLater / internalError)
            outcomes.append((False, exc))
    return outcomes


@dataclass(frozen=True, slots=True)
class Result:
    """A response to send, and what it said about each CertID (for the log and metrics).

    ``status`` is 'successful', 'malformed', 'unauthorized', 'try_later' or 'internal_error';
    ``answers`` pairs each CertID with its lookup (empty when nothing was looked up);
    ``source`` says where a successful answer came from: 'presigned' (the bytes every
    responder shares), 'cache' (this process's own earlier signature) or 'live'.
    """

    der: bytes
    status: str
    answers: tuple[tuple[CertId, Lookup], ...] = ()
    produced_at: datetime | None = None
    next_update: datetime | None = None
    etag: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Pending:
    """An answer waiting in the signing queue: ``future`` gives the signed DER (or the
    signer's exception); ``finish`` turns it into the Result. Cancelling ``future`` (the
    client went away) makes the queue skip the work."""

    future: asyncio.Future
    finish: Callable[[object], Result]
    answers: tuple[tuple[CertId, Lookup], ...]

    def result(self) -> Result:
        """The Result once ``future`` is done (not cancelled)."""
        error = self.future.exception()
        if error is not None:
            # A signing device away is temporary: tryLater. Anything else is our fault:
            # internalError. Never a 500 either way.
            if isinstance(error, SignerUnavailable):
                return Result(TRY_LATER, "try_later", self.answers)
            return Result(INTERNAL_ERROR, "internal_error", self.answers)
        return self.finish(self.future.result())

    async def wait(self) -> Result:
        """Wait for the signing, then the Result."""
        with contextlib.suppress(Exception):  # result() answers internalError
            await self.future
        return self.result()


@dataclass
class Responder:
    """Answers requests from ``registry``, signing as ``identity`` or an issuer's delegate.

    A request with CertIDs of several issuers is signed by ``identity`` unless they all
    share one delegated signer; any CertID of an unregistered issuer makes the whole
    answer ``unauthorized`` (we are not authoritative for it).

    ``next_identity`` replaces ``identity`` at ``switch_at``: checked on every request
    (one comparison), so no answer produced from that second on is the old key's even
    when the process's timer (``switch_if_due``, for an idle process) fires late.
    """

    registry: Registry
    identity: ResponderIdentity
    signing: SigningQueue
    cache: ResponseCache | None
    validity: timedelta
    clock: Clock = utc_now
    next_identity: ResponderIdentity | None = None
    switch_at: datetime | None = None
    #: Called with the new identity once it has taken over (metrics, say).
    on_switch: list[Callable[[ResponderIdentity], None]] = field(default_factory=list)
    #: The answers the presigner shares (None: every answer is this process's own).
    presigned: PresignedStore | None = None
    #: Seconds a request may wait for the pre-signed answer of a new state before signing.
    presign_wait: float = 0.3
    #: Clock of the bounded wait (monotonic; injected by tests).
    monotonic: Callable[[], float] = time.monotonic
    # (issuer_id, serial, algorithm) -> (when its pre-signed answer was first seen stale, the
    # state then): a request waits only within STALE_WINDOW of the change.
    _stale: dict[tuple[str, int, str], tuple[float, str]] = field(default_factory=dict, init=False, repr=False)
    # Nonce-less requests come back byte for byte (each desktop asks about its own
    # certificate again and again): their parse, a pure function of the bytes, is kept.
    _parsed: dict[bytes, ParsedRequest] = field(default_factory=dict, init=False, repr=False)

    def answer(self, der: bytes) -> Result | Pending:
        """The response for the DER request ``der``: a ``Result`` when it can be given at once
        (cached, refused, malformed), else the ``Pending`` signing. Never raises for a
        client's input. Synchronous, so that an edge can answer a cached request without
        creating a task for it."""
        parsed = self._parsed.get(der) if type(der) is bytes else None
        if parsed is None:
            try:
                parsed = parse_request(der)
            except MalformedRequest:
                return Result(MALFORMED, "malformed")
            if parsed.nonce is None and type(der) is bytes:
                if len(self._parsed) >= PARSED_MEMO:
                    self._parsed.clear()  # bounded, and simpler than an LRU for what it saves
                self._parsed[der] = parsed
        return self.answer_parsed(parsed)

    async def respond(self, der: bytes) -> Result:
        """``answer`` for callers that simply wait: the Result, signed if need be."""
        outcome = self.answer(der)
        return outcome if type(outcome) is Result else await outcome.wait()

    def answer_parsed(self, parsed: ParsedRequest) -> Result | Pending:
        """``answer`` for a request already parsed."""
        lookup = self.registry.lookup
        answers = tuple((cert_id, lookup(cert_id)) for cert_id in parsed.cert_ids)
        for _, found in answers:
            if found.issuer is None:
                return Result(UNAUTHORIZED, "unauthorized", answers)
        now = self.clock().replace(microsecond=0)
        if self.switch_at is not None and now >= self.switch_at:
            self.switch_signer()
        if self.presigned is not None and parsed.nonce is None and len(answers) == 1:
            cert_id, found = answers[0]
            if found.record is not None:
                outcome = self._presigned(cert_id, found, answers, now)
                if outcome is not None:
                    return outcome
        return self._own(parsed, answers, now)

    def _presigned(self, cert_id: CertId, found: Lookup, answers, now: datetime) -> Result | Pending | None:
        """The shared answer for this state, or a bounded wait for it; None: sign our own."""
        key = (found.issuer.issuer_id, cert_id.serial, cert_id.hash_algorithm)
        entry = self.presigned.get(*key)
        if entry is None:
            # Never pre-signed: a registration made just now reaches every responder from
            # the broker as it reaches the presigner, whose answer follows in milliseconds:
            # wait for it as for a change (past STALE_WINDOW it is not coming: sign our own).
            changed_at = found.record.changed_at
            if changed_at is not None and (now - changed_at).total_seconds() <= STALE_WINDOW:
                return self._await_presigned(key, answers, now)
            return None
        if cert_id.der and entry[CERT_ID] != cert_id.der:
            return None  # a CertID encoded otherwise
        signer = (found.issuer.signer or self.identity).key_hash
        state = state_of(found.record)
        if self.presigned.servable(entry, state, signer, now):
            return _from_presigned(entry, answers)
        if entry[STATE] == state and entry[SIGNER] == signer:
            return None  # expiring and not refreshed: the presigner is late, sign our own
        # The state (or signer) changed and its answer is on its way: wait for it, within
        # STALE_WINDOW of the change (after that the presigner is away: sign our own).
        seen = self._stale.get(key)
        tick = self.monotonic()
        if seen is None or seen[1] != state + signer.hex():
            if len(self._stale) >= STALE_MEMO:
                self._stale.clear()
            self._stale[key] = seen = (tick, state + signer.hex())
        if tick - seen[0] > STALE_WINDOW:
            return None
        return self._await_presigned(key, answers, now)

    def _await_presigned(self, key: tuple[str, int, str], answers, now: datetime) -> Pending:
        """Wait up to ``presign_wait`` for the presigner's answer; then sign our own."""
        store, loop = self.presigned, asyncio.get_running_loop()
        outcome: asyncio.Future = loop.create_future()
        arrival = store.wait(*key)
        cert_id = answers[0][0]

        def settle(result: Result) -> None:
            if not outcome.done():
                outcome.set_result(result)

        def own() -> None:
            if outcome.done():
                return
            # Looked up again: the state may have moved on while the request waited.
            mine = self._own(ParsedRequest((cert_id,), None), ((cert_id, self.registry.lookup(cert_id)),),
                             self.clock().replace(microsecond=0))
            if type(mine) is Result:
                settle(mine)
            else:
                mine.future.add_done_callback(lambda _: settle(mine.result()) if not mine.future.cancelled() else None)
                outcome.add_done_callback(lambda _: mine.future.cancel() if outcome.cancelled() else None)

        def arrived(done: asyncio.Future) -> None:
            timer.cancel()
            if done.cancelled() or outcome.done():
                return
            entry: PresignedAnswer = done.result()
            fresh = self.registry.lookup(cert_id)  # as held now, issuer's signer included
            same_cert_id = not cert_id.der or entry[CERT_ID] == cert_id.der
            if fresh.record is not None and same_cert_id and store.servable(
                    entry, state_of(fresh.record), (fresh.issuer.signer or self.identity).key_hash,
                    self.clock().replace(microsecond=0)):
                settle(_from_presigned(entry, ((cert_id, fresh),)))
            else:
                own()  # it arrived for another state than the one now held: ours, live

        def expired() -> None:
            store.forget_waiter(*key, arrival)
            arrival.cancel()
            own()

        timer = loop.call_later(self.presign_wait, expired)
        arrival.add_done_callback(arrived)

        def gone(_: asyncio.Future) -> None:
            if outcome.cancelled():  # the client went away: stop waiting for it
                timer.cancel()
                store.forget_waiter(*key, arrival)
                arrival.cancel()

        outcome.add_done_callback(gone)
        return Pending(outcome, _same, answers)

    def _own(self, parsed: ParsedRequest, answers, now: datetime) -> Result | Pending:
        """This process's cached answer, or one signed live."""
        single = self.cache is not None and ResponseCache.cacheable(parsed)
        if single:
            cert_id, found = answers[0]
            hit = self.cache.get(found, cert_id, now)
            if hit is not None:
                return _from_cache(hit, answers)
        identity = self._signer_for(answers)
        if not identity.valid_at(now):
            return Result(UNAUTHORIZED, "unauthorized", answers)
        # Never valid past the signer: clients would hold an answer its certificate no
        # longer vouches for (and the cache serves an entry only until its nextUpdate).
        next_update = min(now + self.validity, identity.not_after)
        singles = [found.answer(cert_id) for cert_id, found in answers]
        nonce = parsed.nonce
        ours = identity is self.identity

        def sign() -> bytes:
            return build_response(identity, singles, nonce=nonce, produced_at=now, this_update=now,
                                  next_update=next_update)

        def finish(signed: bytes) -> Result:
            if ours and identity is not self.identity:
                # Signed by the old key while the switch happened (queued before it, done
                # after): not served nor cached, the client asks again and gets the new one.
                return Result(TRY_LATER, "try_later", answers)
            if single:
                # Keyed by the state version looked up before signing: had the state changed
                # meanwhile, this entry is simply never matched again.
                entry = self.cache.put(found, cert_id, signed, produced_at=now, next_update=next_update)
                return Result(entry.der, "successful", answers, now, next_update, entry.etag, "live")
            return Result(signed, "successful", answers, now, next_update, None, "live")

        try:
            if identity.executor is None:
                future = self.signing.submit(sign)
            else:
                future = self.signing.submit_to(identity.executor, sign)
        except Overloaded:
            return Result(TRY_LATER, "try_later", answers)
        return Pending(future, finish, answers)

    def switch_if_due(self) -> bool:
        """Switch to the next identity if its time has come; whether one is pending still."""
        if self.switch_at is not None and self.clock() >= self.switch_at:
            self.switch_signer()
        return self.switch_at is not None

    def signers(self) -> tuple[ResponderIdentity, ResponderIdentity | None]:
        """(current, next) as of now: what /v1/responder.pem and /responder-next.pem serve."""
        self.switch_if_due()
        return self.identity, self.next_identity

    def switch_signer(self) -> None:
        """Let ``next_identity`` take over now: the answers cached so far are dropped (the
        delegated signers' with them: one re-signing each, once per rotation, keeps the
        cache free of any notion of who signed what)."""
        if self.next_identity is None:
            return
        self.identity, self.next_identity, self.switch_at = self.next_identity, None, None
        if self.cache is not None:
            self.cache.clear()
        for callback in self.on_switch:
            callback(self.identity)

    def _signer_for(self, answers: tuple[tuple[CertId, Lookup], ...]) -> ResponderIdentity:
        signer = answers[0][1].issuer.signer
        if signer is None:
            return self.identity
        for _, found in answers[1:]:
            if found.issuer.signer is not signer:
                return self.identity
        return signer


def _from_cache(entry: CachedResponse, answers) -> Result:
    return Result(entry.der, "successful", answers, entry.produced_at, entry.next_update, entry.etag, "cache")


def _from_presigned(entry: PresignedAnswer, answers) -> Result:
    return Result(entry[DER], "successful", answers, entry[PRODUCED_AT], entry[NEXT_UPDATE], entry[ETAG], "presigned")


def _same(result: object) -> Result:
    # A wait for a pre-signed answer settles with the Result itself.
    return result  # type: ignore[return-value]
