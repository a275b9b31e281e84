"""How a scenario is run and measured.

A scenario: the load starts (keys and suspensions at a steady rate, a clerk on the
console); after a warm-up the fault (``tests.chaos.faults``) is injected and lifted; the
load goes on a few seconds, then stops; what was left unanswered is retried; then the
harness waits, with a deadline, for every key's external user and every certificate's
final state in OCSP, and fills in the ledger row. Where the fault has a recovery moment
(the broker or the database back, a lock released), a key is issued and a suspension
made at that moment, and the time until users and OCSP show them is the "events after
recovery".

For a killed process the stack's own supervisors are expected to bring it back
(deploy/run.py a service, the ocsp supervisor a worker). When they do not, the scenario
fails on it, and only then does the harness restart the whole stack, saying so, so that
the scenario can still be counted and the next ones run.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.chaos.evidence import LogMark, summarize
from tests.chaos.ledger import Result
from tests.chaos.operators import KeyAsk, Load, Recorder, advance_key, advance_state, expected_reading, external_users
from tests.chaos.session import Session
from tests.support.identities import new_cui

if TYPE_CHECKING:
    from tests.chaos.faults import Scenario

RESTART_DEADLINE = 20.0   # seconds for a supervisor to bring a killed process back, ready
CATCH_UP_DEADLINE = 60.0
CONVERGE_DEADLINE = 60.0
FLOW_DEADLINE = 30.0
RECOVERY_DEADLINE = 120.0
OUTBOXES = ("keygen", "users", "certs")


@dataclass
class Run:
    """One scenario being run: the session, its result, its load."""

    session: Session
    result: Result
    load: Load
    outage: float
    poisoned: list[str] = field(default_factory=list)  # users the rejected poison names
    poison_expected: int = 0   # poison messages each KeyIssued queue must dead-letter
    flow: bool = False
    lifted: float | None = None
    flow_task: asyncio.Task | None = None

    def recovered(self, at: float) -> None:
        """The fault is lifted (the broker or the database back) at ``at``: the recovery
        key and suspension go at once, while the harness still waits for its own tools."""
        if self.lifted is None:
            self.lifted = at
            if self.flow:
                self.flow_task = asyncio.create_task(_flow_after_recovery(self, at))

    @property
    def stack(self):
        return self.session.stack

    async def expect_restart(self, service: str, old_pid: int, since: float, workers: int = 2, *,
                             ready: bool = True) -> bool:
        """Wait for the stack's supervisors to bring ``service`` back (a new pid, ready; or
        without ``ready``, a new pid still alive a second later); otherwise fail the
        scenario and restart the stack by the harness."""
        stack, result = self.stack, self.result
        deadline = since + RESTART_DEADLINE
        while time.monotonic() < deadline:
            if not stack.running:
                said = [line.strip()[:160] for line in stack.log_tail("ocsp_worker_died")[-1:]
                        + stack.log_tail("exited with")[-1:]]
                result.fail(f"deploy.run exited ({stack.process.returncode}) instead of restarting {service}"
                            + (": " + " then ".join(f"«{line}»" for line in said) if said else ""))
                await self.restart_by_harness(f"{service} was not restarted")
                return False
            found = stack.processes()
            if service == "ocsp-worker":
                back = old_pid not in found.get("ocsp-worker", []) and len(found.get("ocsp-worker", [])) >= workers
            else:
                back = any(pid != old_pid for pid in found.get(service, []))
            if back and not ready:
                await asyncio.sleep(1.0)
                back = any(pid != old_pid for pid in stack.processes().get(service, []))
                if back:
                    result.note(f"{service} restarted by its supervisor {time.monotonic() - since - 1:.2f} s "
                                "after the kill (its process up; readiness not required here)")
                    return True
            elif back and (service == "ocsp-worker" or await self._ready(service)):
                result.note(f"{service} restarted by its supervisor {time.monotonic() - since:.2f} s after the kill")
                return True
            await asyncio.sleep(0.1)
        result.fail(f"{service} not restarted within {RESTART_DEADLINE:.0f} s of the kill")
        await self.restart_by_harness(f"{service} was not restarted")
        return False

    async def _ready(self, service: str) -> bool:
        http_name = "ocsp" if service.startswith("ocsp") else service
        return await self.stack.ready(self.session.api.http, http_name)

    async def restart_by_harness(self, why: str) -> None:
        seconds = await self.stack.restart_by_harness(why)
        self.result.note(f"stack restarted by the harness ({why}): ready {seconds:.1f} s later")

    async def ensure_running(self, after: str) -> None:
        """After a broker or database fault, the stack must still be there."""
        if not self.stack.running:
            evidence = self.stack.log_tail("exited with")
            self.result.fail(f"the stack exited during {after}"
                             + (f": «{evidence[-1].strip()[:160]}»" if evidence else ""))
            await self.restart_by_harness(f"it exited during {after}")


# -- running one -------------------------------------------------------------------------------

async def run_scenario(session: Session, scenario: Scenario, *, keys_per_second: float = 3.0,
                       changes_per_second: float = 4.0, warmup: float = 3.0, after: float = 3.0,
                       outage: float = 6.0) -> Result:
    result = Result(scenario.name, scenario.what, gap_target=scenario.gap_target, flow_target=scenario.flow)
    began = time.monotonic()
    session.api.recorder = Recorder()
    for cert in [*session.certs, session.flow_cert]:
        cert.acked = 0
    tag = uuid.uuid4().hex[:6].upper()
    load = Load(session.api, tag, session.certs, keys_per_second, changes_per_second)
    run = Run(session, result, load, outage, flow=scenario.flow)
    if not session.stack.running:
        await run.restart_by_harness("it was not running when the scenario began")
    dead_before = await _dead_letters(session)
    mark = LogMark(session.stack.logs)
    wall_began = (await session.sql("select now() as t"))[0]["t"]

    stop = asyncio.Event()
    load_task = asyncio.create_task(load.run(stop))
    try:
        await asyncio.sleep(warmup)
        try:
            returned = await scenario.inject(run)
        except Exception as exc:  # recorded; the scenario is still measured, the run goes on
            result.fail(f"the fault could not be injected: {exc!r}")
            returned = time.monotonic()
        run.recovered(returned)  # for faults without a recovery moment of their own
        lifted = run.lifted
        await asyncio.sleep(after)
    except BaseException:  # interrupted: nothing is waited for on the way out
        for task in (load_task, run.flow_task):
            if task is not None:
                task.cancel()
        raise
    stop.set()
    await load_task
    if run.flow_task is not None:
        await run.flow_task
    if not session.stack.running:
        await run.ensure_running("the scenario")
    never_keys, never_certs = await load.catch_up(time.monotonic() + CATCH_UP_DEADLINE)
    await _converge(run, lifted, never_keys, never_certs)
    try:
        await _count_doubles(run, wall_began)
    except Exception as exc:  # the tables could not be read: say so rather than claim none
        result.fail(f"doubles not counted: {exc!r}")
    await _check_dead_letters(run, dead_before)
    ended = time.monotonic()
    window = session.prober.window(began, ended)
    result.ocsp_gap, result.ocsp_failures = window.longest_gap, window.failures
    if window.longest_gap > 1.0:
        result.note(f"OCSP's longest silence began {window.gap_began_after:.1f} s into the scenario")
    result.errors = session.api.recorder.errors()
    result.server_errors = session.api.recorder.server_errors
    result.state_changes = sum(c.acked for c in [*session.certs, session.flow_cert])
    result.seconds = ended - began
    result.log = summarize(mark.since(session.stack.logs))
    result.judge()
    return result


async def _flow_after_recovery(run: Run, lifted: float) -> None:
    """At the recovery moment: a new key and a suspension; when users and OCSP show them."""
    session, result = run.session, run.result
    deadline = lifted + FLOW_DEADLINE

    async def key() -> float | None:
        ask = KeyAsk(new_cui(), "B", run.load.tag)
        run.load.asks.append(ask)
        while not ask.issued and time.monotonic() < deadline:
            wait = await advance_key(session.api, ask)
            if not ask.issued:
                await asyncio.sleep(min(wait or 0.1, 0.1))
        seen = await session.wait_user(ask, deadline) if ask.issued else None
        if ask.issued:
            result.note(f"recovery key: keygen answered +{ask.issued_at - lifted:.2f} s, its user listed "
                        + (f"+{seen - lifted:.2f} s" if seen else "never"))
        return None if seen is None else seen - lifted

    async def suspension() -> float | None:
        cert = session.flow_cert
        cert.pending = not cert.suspended
        run.load.touched.add(cert.id)
        while cert.pending is not None and time.monotonic() < deadline:
            wait = await advance_state(session.api, cert)
            if cert.pending is not None:
                await asyncio.sleep(min(wait or 0.1, 0.1))
        if cert.pending is not None:
            return None
        acked = time.monotonic()
        seen = await session.wait_ocsp(cert, expected_reading(cert), deadline)
        result.note(f"recovery suspension: certs answered +{acked - lifted:.2f} s, OCSP agreed "
                    + (f"+{seen - lifted:.2f} s" if seen else "never"))
        return None if seen is None else seen - lifted

    async def drained() -> None:
        # Where an event waits: an outbox that stays full means its relay is not publishing.
        emptied: dict[str, float] = {}
        while len(emptied) < len(OUTBOXES) and time.monotonic() < deadline:
            try:
                row = (await session.sql("select " + ", ".join(
                    f"(select count(*) from {schema}.outbox) as {schema}" for schema in OUTBOXES)))[0]
            except Exception:  # the database may still be coming back
                row = {}
            for schema in OUTBOXES:
                if row.get(schema) == 0 and schema not in emptied:
                    emptied[schema] = time.monotonic() - lifted
            await asyncio.sleep(0.1)
        result.note("outboxes first empty after recovery: " + ", ".join(
            f"{schema} +{emptied[schema]:.2f} s" if schema in emptied else f"{schema} never"
            for schema in OUTBOXES))

    result.flow_key, result.flow_ocsp, _ = await asyncio.gather(key(), suspension(), drained())


async def _converge(run: Run, lifted: float, never_keys: list[KeyAsk], never_certs: list) -> None:
    session, result, load = run.session, run.result, run.load
    issued = [a for a in load.asks if a.issued]
    certs = [c for c in [*session.certs, session.flow_cert] if c.id in load.touched and c.pending is None]
    deadline = time.monotonic() + CONVERGE_DEADLINE
    users: dict[str, int] = {}
    agreeing: set[str] = set()
    while True:
        listed = await external_users(session.api, load.tag)
        if listed is not None:
            users = listed
        readings = await asyncio.gather(*(
            session.wait_ocsp(c, expected_reading(c), time.monotonic() + 0.01) for c in certs
            if c.id not in agreeing))
        pending = [c for c in certs if c.id not in agreeing]
        agreeing.update(c.id for c, seen in zip(pending, readings) if seen is not None)
        if all(a.username in users for a in issued) and len(agreeing) == len(certs):
            result.converge = max(0.0, time.monotonic() - lifted)
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    result.keys.asked = len(load.asks)
    result.keys.present = sum(a.username in users for a in issued)
    result.keys.missing = result.keys.asked - result.keys.present
    result.states.asked = len(load.touched)
    result.states.present = len(agreeing)
    result.states.missing = result.states.asked - result.states.present
    if never_keys:
        result.fail(f"{len(never_keys)} keys never accepted by keygen within {CATCH_UP_DEADLINE:.0f} s of retries")
    if never_certs:
        result.fail(f"{len(never_certs)} suspensions never accepted by certs within {CATCH_UP_DEADLINE:.0f} s")
    missing = [a.username for a in issued if a.username not in users]
    if missing:
        result.note(f"keys without their user, e.g. {', '.join(missing[:3])}")
    result.keys.doubled = sum(n - 1 for n in users.values() if n > 1)


async def _count_doubles(run: Run, wall_began) -> None:
    """Positive evidence of exactly once, from the services' own tables: one key record
    per user in users, one history entry per acknowledged change in certs."""
    session, result, load = run.session, run.result, run.load
    usernames = [a.username for a in load.asks if a.issued]
    rows = await session.sql("select username, count(*) as n from users.key_changes "
                             "where username = any($1::text[]) group by username having count(*) > 1", usernames)
    result.keys.doubled += sum(r["n"] - 1 for r in rows)
    certs = {c.id: c for c in [*session.certs, session.flow_cert]}
    rows = await session.sql("select certificate_id::text as id, count(*) as n from certs.certificate_history "
                             "where at >= $1 and action in ('suspended', 'reinstated') group by certificate_id",
                             wall_began)
    result.states.doubled = sum(max(0, r["n"] - certs[r["id"]].acked) for r in rows if r["id"] in certs)


async def _dead_letters(session: Session) -> dict[str, int] | None:
    try:
        return await session.dead_letters()
    except Exception:  # the broker away: unknown (None), never taken for empty
        return None


async def _check_dead_letters(run: Run, before: dict[str, int]) -> None:
    """Real events must never end in a dead-letter queue; poison must, all of it, and
    apply nothing."""
    session, result = run.session, run.result
    if before is None:
        result.fail("the dead-letter queues could not be read when the scenario began")
        return
    expected = run.poison_expected
    deadline = time.monotonic() + CONVERGE_DEADLINE
    while True:
        after = await _dead_letters(session) or before
        delta = {q: after.get(q, 0) - before.get(q, 0) for q in after}
        settled = not run.poisoned or all(delta.get(q, 0) >= expected for q in ("users.key-issued", "ocsp.keys"))
        if settled or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    result.dead_lettered = {q: n for q, n in delta.items() if n}
    if run.poisoned:
        for queue in ("users.key-issued", "ocsp.keys"):
            got = delta.get(queue, 0)
            if got < expected:
                result.fail(f"{queue}: {got} of the {expected} poison messages dead-lettered")
            elif got > expected:
                result.fail(f"{queue}: {got - expected} real events dead-lettered besides the poison")
        applied = [u for u in run.poisoned if u in (await _users_named(run, u)).split()]
        if applied:
            result.fail(f"{len(applied)} rejected events applied anyway")
    else:
        real = sum(delta.values())
        if real:
            result.fail(f"{real} real events dead-lettered ({', '.join(f'{q} +{n}' for q, n in delta.items() if n)})")


async def _users_named(run: Run, username: str) -> str:
    status, body, _ = await run.session.api.call("GET", "users", "/v1/users", "/v1/users",
                                                 params={"type": "external", "q": username.partition("_")[0]})
    return " ".join(i["username"] for i in (body or {}).get("items", [])) if status == 200 else ""
