"""The faults, one scenario each: how each is injected, and the moment it is lifted.

Each ``inject(run)`` injects its fault into our own PostgreSQL, RabbitMQ or the stack's
processes (by pid), lifts it, and returns; a fault with a recovery moment (the broker or
the database back, a lock released) calls ``run.recovered(at)`` at that moment, which
sends the recovery key and suspension at once. A killed process is left to the stack's
own supervisors (``run.expect_restart``). How a scenario is run and measured is
``tests.chaos.scenarios``.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika

from shared.broker import broker_url
from shared.events import Envelope, KeyIssued
from tests.chaos.scenarios import RECOVERY_DEADLINE, Run
from tests.chaos.session import EXCHANGE
from tests.support.identities import new_cui


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    inject: Callable[["Run"], Awaitable[float]]   # injects and lifts the fault; returns when lifted
    flow: bool = False         # measure events after recovery
    gap_target: bool = True    # OCSP must keep answering (≤ 1 s gaps)
    poison: bool = False       # dead letters are expected (counted by the scenario itself)



# -- process deaths ------------------------------------------------------------------------

def kill(service: str) -> Callable[[Run], Awaitable[float]]:
    async def inject(run: Run) -> float:
        workers = len(run.stack.processes().get("ocsp-worker", []))
        pid = run.stack.pid_of(service)
        run.stack.kill(pid)
        killed = time.monotonic()
        run.result.note(f"kill -9 {service} (pid {pid})")
        await run.expect_restart(service, pid, killed, workers)
        return killed

    return inject


# -- the broker ------------------------------------------------------------------------------

async def broker_stop_app(run: Run) -> float:
    rabbit = run.session.rabbit
    await rabbit.stop_app()
    stopped = time.monotonic()
    await asyncio.sleep(run.outage)
    back = asyncio.create_task(run.session.wait_port(rabbit.port, time.monotonic() + RECOVERY_DEADLINE))
    starting = asyncio.create_task(rabbit.start_app())
    lifted = await back
    run.recovered(lifted)
    await starting
    run.result.note(f"rabbitmqctl stop_app; start_app {lifted - stopped:.1f} s later")
    await run.ensure_running("the broker's outage")
    return lifted


async def broker_kill(run: Run) -> float:
    rabbit = run.session.rabbit
    pid = rabbit.kill()
    killed = time.monotonic()
    await asyncio.sleep(run.outage)
    back = asyncio.create_task(run.session.wait_port(rabbit.port, time.monotonic() + RECOVERY_DEADLINE))
    starting = asyncio.create_task(rabbit.restart_after_kill())
    lifted = await back
    run.recovered(lifted)
    await starting
    run.result.note(f"kill -9 of the broker's VM (pid {pid}); node restarted, AMQP back {lifted - killed:.1f} s later")
    await run.ensure_running("the broker's outage")
    return lifted


# -- the database ----------------------------------------------------------------------------

def pg_restart(mode: str) -> Callable[[Run], Awaitable[float]]:
    async def inject(run: Run) -> float:
        began = time.monotonic()
        restart = asyncio.create_task(run.session.pg.restart(mode))
        # Back: the first answer after one refusal (the old server going), or after pg_ctl
        # returned (a restart too quick for a poll to see it away).
        seen_away = False
        deadline = began + RECOVERY_DEADLINE
        while time.monotonic() < deadline:
            answered = await run.session.database_answers()
            if not answered:
                seen_away = True
            elif seen_away or restart.done():
                break
            await asyncio.sleep(0.02)
        lifted = time.monotonic()
        run.recovered(lifted)
        await restart
        run.result.note(f"pg_ctl restart -m {mode}: answering again {lifted - began:.2f} s after it began")
        await run.ensure_running("the database's restart")
        return lifted

    return inject


STALL_SECONDS = 30.0
STALL_RESTARTS = 6  # the queues dead-letter after 5 redeliveries: more restarts than that


async def db_stall(run: Run) -> float:
    """An ACCESS EXCLUSIVE lock on users' table for 30 s while keys keep coming, and the
    users service killed (to be restarted by the runner) a few times meanwhile: every
    restart hands its held messages back to the queue, which counts a delivery each time."""
    import asyncpg

    conn = await asyncpg.connect(run.session.db_dsn)
    tx = conn.transaction()
    await tx.start()
    await conn.execute("lock table users.users in access exclusive mode")
    locked = time.monotonic()
    run.result.note(f"lock table users.users in access exclusive mode, for {STALL_SECONDS:.0f} s")
    release = asyncio.create_task(_release_at(run, tx, conn, locked + STALL_SECONDS))
    try:
        for n in range(STALL_RESTARTS):
            await asyncio.sleep(max(0.0, locked + (n + 1) * STALL_SECONDS / (STALL_RESTARTS + 1) - time.monotonic()))
            if release.done():
                break
            await _note_waiting(run, f"{time.monotonic() - locked:.0f} s into the stall")
            pid = run.stack.pid_of("users")
            run.stack.kill(pid)
            run.result.note(f"kill -9 users (pid {pid}) during the stall, {time.monotonic() - locked:.1f} s in")
            # Not "ready": while the table is locked the users service cannot be (its pool's
            # connections wait on the lock); a supervisor only has to bring the process back.
            if not await run.expect_restart("users", pid, time.monotonic(), ready=False):
                run.result.note("further restarts skipped: the runner restarts nothing")
                break
    finally:
        lifted = await release
    return lifted


async def _note_waiting(run: Run, when: str) -> None:
    """Who waits on the lock, by application (positive evidence the stall holds them)."""
    rows = await run.session.sql(
        "select application_name as app, count(*) as n from pg_stat_activity "
        "where wait_event_type = 'Lock' group by application_name order by 2 desc")
    if rows:
        run.result.note(f"waiting on a lock {when}: " + ", ".join(f"{r['app'] or '?'} ×{r['n']}" for r in rows))


async def _release_at(run: Run, tx, conn, when: float) -> float:
    await asyncio.sleep(max(0.0, when - time.monotonic()))
    await tx.rollback()
    lifted = time.monotonic()
    run.recovered(lifted)
    await conn.close()
    return lifted


# -- poison messages ---------------------------------------------------------------------------

POISON_GARBAGE = 5
POISON_REJECTED = 5


async def poison(run: Run) -> float:
    """Garbage bodies and KeyIssued events their handlers reject (an occurred time that
    is no time), published as keygen (so not refused as forged) among the real ones."""
    session = run.session
    url = broker_url(session.rabbit.url, session.stack.data_dir, "keygen")
    connection = await aio_pika.connect(url)
    rejected = []
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EXCHANGE, ensure=False)
        for n in range(POISON_GARBAGE):
            await exchange.publish(aio_pika.Message(b"\x00not an event " + str(n).encode(), user_id="siui-keygen",
                                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   routing_key=KeyIssued.ROUTING_KEY)
        for _ in range(POISON_REJECTED):
            cui = new_cui()
            event = KeyIssued(provider_id=str(uuid.uuid4()), cui=cui, provider_code=cui,
                              provider_name=f"SC POISON {run.load.tag} SRL", key_id=str(uuid.uuid4()),
                              key_digest="00" * 32, reset=False, issued_at="not a time", issued_by="chaos",
                              external_user=f"{cui}_CAS-B")
            envelope = Envelope(id=str(uuid.uuid4()), type=KeyIssued.TYPE, version=1,
                                occurred_at="2025-01-01T00:00:00+00:00", cas="B", data=event.to_data())
            await exchange.publish(aio_pika.Message(envelope.to_json(), user_id="siui-keygen",
                                                    content_type="application/json",
                                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   routing_key=KeyIssued.ROUTING_KEY)
            rejected.append(f"{cui}_CAS-B")
    finally:
        await connection.close()
    lifted = time.monotonic()
    run.result.note(f"published {POISON_GARBAGE} garbage bodies and {POISON_REJECTED} KeyIssued its handlers "
                    "reject, as siui-keygen")
    run.poisoned = rejected  # checked after convergence
    run.poison_expected = POISON_GARBAGE + POISON_REJECTED
    return lifted


# -- a death with unpublished events ------------------------------------------------------------

async def outbox_kill(run: Run) -> float:
    """The broker stopped, keys issued (their KeyIssued wait in keygen's outbox), keygen
    killed holding them, the broker back: keygen must come back and publish them."""
    session = run.session
    await session.rabbit.stop_app()
    stopped = time.monotonic()
    await asyncio.sleep(run.outage)
    rows = (await session.sql("select count(*) as n from keygen.outbox"))[0]["n"]
    run.result.note(f"broker stopped; {rows} KeyIssued unpublished in keygen's outbox")
    if rows == 0:
        run.result.fail("the fault was not set up: keygen's outbox was empty when keygen was killed")
    pid = run.stack.pid_of("keygen")
    run.stack.kill(pid)
    killed = time.monotonic()
    run.result.note(f"kill -9 keygen (pid {pid}) holding them")
    back = asyncio.create_task(session.wait_port(session.rabbit.port, time.monotonic() + RECOVERY_DEADLINE))
    starting = asyncio.create_task(session.rabbit.start_app())
    lifted = await back
    run.recovered(lifted)
    await starting
    run.result.note(f"broker back {lifted - stopped:.1f} s after it stopped")
    await run.expect_restart("keygen", pid, killed)
    return lifted


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("kill-users", "kill -9 of the users service", kill("users")),
    Scenario("kill-keygen", "kill -9 of the keygen service", kill("keygen")),
    Scenario("kill-certs", "kill -9 of the certs service", kill("certs")),
    Scenario("kill-console", "kill -9 of the console", kill("console")),
    Scenario("kill-ocsp-worker", "kill -9 of one ocsp worker", kill("ocsp-worker")),
    Scenario("kill-ocsp-supervisor", "kill -9 of the ocsp supervisor", kill("ocsp"), gap_target=False),
    Scenario("broker-stop-app", "rabbitmqctl stop_app, start_app", broker_stop_app, flow=True),
    Scenario("broker-kill", "kill -9 of the RabbitMQ node, restarted", broker_kill, flow=True),
    Scenario("pg-restart-fast", "pg_ctl restart -m fast", pg_restart("fast"), flow=True),
    Scenario("pg-restart-immediate", "pg_ctl restart -m immediate", pg_restart("immediate"), flow=True),
    Scenario("db-stall", "users' table locked 30 s, users killed meanwhile", db_stall, flow=True),
    Scenario("poison", "garbage and rejected events on the queues", poison, poison=True),
    Scenario("outbox-kill", "keygen killed holding unpublished events, broker stopped", outbox_kill, flow=True),
)}
