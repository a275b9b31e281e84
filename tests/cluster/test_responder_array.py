"""Two hosts of a site behind deploy/haproxy's balancer, each running users, keygen, certs
and ocsp (``python -m deploy.run``, the responder with two workers, its own ports): two
OCSP responder instances and two of every API service, on a three-node RabbitMQ cluster
and on a PostgreSQL primary with its synchronous streaming standby, all of the test's
own, each given to the services as deployed (every node in SIUI_AMQP_URL, both hosts in
one multi-host DSN). The ledger (printed, and written to
test-artifacts/cluster/responder-array.json):

1. every worker of both responders serves the same bytes for the same state (the
   pre-signed answer): one ETag, and an ETag from one instance gets 304 from the other
   and through the balancer;
2. a suspension through the certs API (through the balancer) reaches each responder
   within one second, measured per responder, and so does the reinstatement;
3. the primary stopped as a machine dies (``-m immediate``) and the standby promoted by
   hand while a clerk adds providers and OCSP is asked through the balancer: writes
   resume, none a client saw committed is lost, no OCSP request fails, and a suspension
   after the promotion still reaches each responder within the second;
4. the broker node every service is connected to killed (-9): no OCSP request fails,
   a change made at once reaches both responders, the next within the second, and
   every connection is found again on the other nodes;
5. the second host killed (SIGKILL, every process of it: its responder and the rest)
   during continuous OCSP requests and API reads through the balancer: none fails.

``make test-cluster`` (about a minute: three broker nodes, a PostgreSQL pair and two
stacks started).
"""
from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid

import aiohttp
import asyncpg
import pytest

from deploy.broker import DEFAULT_EXCHANGE_PREFIX, Target, definitions
from tests.chaos.infra import remove_tree
from tests.support import infra
from tests.support.cluster import start_cluster, stop_all, streaming_pair, wait_for, workspace
from tests.support.haproxy import running_balancer
from tests.support.identities import new_cnp, new_cui
from tests.support.ocsp_array import Traffic, ask, get_path, gone, kill_host, reached, status_of
from tests.support.stack import ARTIFACTS, start_stack
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(300)

CUI = "12433636"               # the demo provider's certificate names this holder
USER = f"{CUI}_CAS-B"
ROLE = "siui_array"           # the role, its password and its database, on our own PostgreSQL
LEDGER: dict[str, dict] = {}
LEDGER_PATH = ARTIFACTS / "cluster" / "responder-array.json"
# What every responder must answer within, counted from the moment the change is sent
# to the certs API (its answer included): the design card's one second.
WITHIN = 1.0
# What each host runs (the console, a web page over these APIs, is left out: no part here).
SERVICES = ("users", "keygen", "certs", "ocsp")
# The API reads asked of the other services through the balancer while a host goes.
READS = (("users", "/v1/users?type=external"), ("keygen", "/v1/providers?cas=B"), ("certs", "/v1/certificates?cas=B"))


@pytest.fixture(scope="module")
async def database():
    """A primary and its synchronous streaming standby of the test's own (the machine's
    PostgreSQL is shared by every checkout, and its slots run out): the stacks get both in
    one multi-host DSN, as production's services do."""
    base = workspace("siui-array-pg-")
    try:
        async with streaming_pair(base, ROLE, ROLE, ROLE, synchronous=True) as (primary, standby):
            url = f"postgresql://{ROLE}:{ROLE}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{ROLE}"
            yield {"url": url, "primary": primary, "standby": standby}
    finally:
        remove_tree(base)


@pytest.fixture(scope="module")
async def brokers(pki):
    """Three RabbitMQ nodes of the test's own in one cluster, set up as deploy/setup.sh sets
    up the deployment's (``deploy.broker``'s definitions: each service's user with the data
    directory's password, least-privilege permissions, the exchange's quorum queues),
    imported once the cluster is formed, so every queue has a replica on every node."""
    base = workspace("siui-array-mq-")
    nodes = await start_cluster(base, 3)
    try:
        exchange = f"siui.array.{uuid.uuid4().hex[:8]}"
        target = Target(pki.data_dir, "/", exchange, DEFAULT_EXCHANGE_PREFIX, infra.user_prefix())
        described = base / "definitions.json"
        described.write_text(json.dumps(definitions(target, with_users=True)))  # salted hashes only
        described.chmod(0o644)  # read by the broker's own OS user
        await nodes[0].ctl("import_definitions", str(described))
        yield {"nodes": nodes, "exchange": exchange,
               "url": ",".join(f"amqp://127.0.0.1:{node.port}/" for node in nodes)}
    finally:
        await stop_all(nodes)
        remove_tree(base)


@pytest.fixture(scope="module")
def array(pki, database, brokers):
    exchange = brokers["exchange"]
    # One role owns and uses the database here (as in the fault suite): both DSNs the same.
    # One CertID hash is enough (the requests use SHA-1), and halves the signing.
    # SIUI_ONLINE_PROXY_PROTOCOL: the balancer's :8443 sends the PROXY header (as deployed).
    env = {"SIUI_TRUSTED_PROXIES": "127.0.0.1", "SIUI_ONLINE_PROXY_PROTOCOL": "on",
           "SIUI_DATABASE_OWNER_URL": database["url"],
           "SIUI_AMQP_URL": brokers["url"], "SIUI_OCSP_PRESIGN_HASHES": "sha1"}
    stacks = []
    try:
        stacks.append(start_stack(pki.data_dir, database["url"], exchange, name="array-1",
                                  services=SERVICES, extra_env=env))
        stacks.append(start_stack(pki.data_dir, database["url"], exchange, name="array-2", services=SERVICES,
                                  extra_env=env))
        yield tuple(stacks)
    finally:
        for stack in stacks:
            stack.stop()
        # start_stack declared the exchange on the machine's broker too (unused here).
        asyncio.run(infra.delete_exchange(exchange))


@pytest.fixture(scope="module")
def balancer(array, tmp_path_factory):
    with running_balancer(array, tmp_path_factory.mktemp("haproxy")) as running:
        yield running


@pytest.fixture(scope="module", autouse=True)
def ledger():
    """The ledger, printed and written whatever the tests reached."""
    yield LEDGER
    LEDGER_PATH.parent.mkdir(parents=True, exist_ok=True)
    LEDGER_PATH.write_text(json.dumps(LEDGER, indent=2) + "\n")
    print(f"\nresponder-array ledger ({LEDGER_PATH}):")
    for part, figures in LEDGER.items():
        print(f"  {part}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


@pytest.fixture(scope="module")
async def certificate(array, balancer, pki):
    """The demo provider's certificate registered (provider → activation key → external
    user → issuer → certificate, as the seed's flow does); its id and OCSP GET path."""
    first = array[0]
    async with aiohttp.ClientSession() as http:
        async with http.post(first.url("users", "/v1/sessions"),
                             json={"username": "admin", "password": first.admin_password}) as r:
            assert r.status in (200, 201), await r.text()
            headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
        async with http.post(first.url("keygen", "/v1/providers"), headers=headers, json={
            "cas": "B", "cui": CUI, "name": "SC DEMO MEDICAL SRL", "trade_register_no": "J40/10/3456",
            "legal_representative": {"name": "Ion Popescu", "cnp": "1800101221144"},
        }) as r:
            assert r.status == 201, await r.text()
            provider_id = (await r.json())["id"]
        async with http.post(first.url("keygen", f"/v1/providers/{provider_id}/activation-key"),
                             headers=headers, json={"reset": False}) as r:
            assert r.status == 201, await r.text()
        async with http.post(first.url("certs", "/v1/issuers"), headers=headers,
                             json={"certificate_pem": pki.demo_issuer_cert.read_text()}) as r:
            assert r.status == 201, await r.text()

        async def registered():
            async with http.post(first.url("certs", "/v1/certificates"), headers=headers,
                                 json={"username": USER, "certificate_pem": pki.demo_provider_cert.read_text()}) as r:
                if r.status == 422:  # certs has not yet heard of the external user (KeyIssued on its way)
                    return None
                assert r.status == 201, await r.text()
                return await r.json()

        record = await eventually(registered, timeout=30, what="certificate registered")
    return {"id": record["id"], "path": get_path(pki.demo_provider_cert, pki.demo_issuer_cert), "headers": headers}


def responders(array) -> dict[str, str]:
    """Each responder instance's own address, past the balancer."""
    return {"responder-1": array[0].url("ocsp"), "responder-2": array[1].url("ocsp")}


async def change(http, balancer, certificate, suspended: bool, expected: str, array, limit: float = 10):
    """Suspend or reinstate through the certs API (through the balancer); the seconds from
    the request sent to each responder answering ``expected``."""
    started = time.monotonic()
    async with http.patch(balancer.url("certs", f"/v1/certificates/{certificate['id']}"),
                          headers=certificate["headers"], json={"suspended": suspended}) as r:
        assert r.status == 200, await r.text()
        answered = time.monotonic() - started
    timings = await reached(http, responders(array), certificate["path"], expected, started, limit=limit)
    return answered, timings


async def test_every_worker_of_every_responder_serves_the_same_bytes(array, balancer, certificate):
    path = certificate["path"]
    bases = responders(array)
    async with aiohttp.ClientSession() as http:
        async def one_answer():
            # Until the presigner's answer has reached every worker, a worker may still
            # answer from its live signature (another ECDSA signature, other bytes).
            answers = [await ask(http, base, path) for base in bases.values() for _ in range(4)]
            return answers if len({body for _, body, _ in answers}) == 1 else None

        started = time.monotonic()
        await eventually(one_answer, timeout=30, interval=0.1, what="one answer from every worker")
        converged = time.monotonic() - started
        seen: collections.Counter[tuple[bytes, str]] = collections.Counter()
        for base in bases.values():
            for _ in range(20):
                status, body, etag = await ask(http, base, path)
                assert status == 200 and status_of(body) == "good"
                seen[(body, etag)] += 1
        assert len(seen) == 1, f"{len(seen)} different answers"
        (body, etag), = seen
        # The ETag of one instance, asked of the other and of the balancer: 304, no body.
        revalidated = collections.Counter()
        for base in (*bases.values(), balancer.url("ocsp")):
            for _ in range(10):
                status, empty, tag = await ask(http, base, path, etag)
                revalidated[status] += 1
                assert status == 304 and empty == b"" and tag == etag
        through = [await ask(http, balancer.url("ocsp"), path) for _ in range(10)]
        assert {(s, b) for s, b, _ in through} == {(200, body)}
    LEDGER["1 identical answers"] = {
        "requests_per_responder": 20, "distinct_bodies": len(seen), "etag": etag, "der_bytes": len(body),
        "if_none_match_304": f"{revalidated[304]}/{sum(revalidated.values())}",
        "through_balancer_same_bytes": f"{len(through)}/{len(through)}",
        "converged_after_s": round(converged, 3)}


async def test_a_suspension_reaches_every_responder_within_one_second(array, balancer, certificate):
    figures = {}
    async with aiohttp.ClientSession() as http:
        await eventually(lambda: _ready(http, balancer.url("certs", "/readyz")), timeout=30, what="certs balanced")
        for suspended, expected in ((True, "revoked"), (False, "good")):
            answered, timings = await change(http, balancer, certificate, suspended, expected, array)
            what = "suspended" if suspended else "reinstated"
            figures[f"{what} certs_api_answered_s"] = round(answered, 3)
            figures.update({f"{what} {k}": round(v, 3) for k, v in timings.items()})
            assert all(v <= WITHIN for v in timings.values()), (expected, timings)
    LEDGER["2 suspension reaches every responder"] = figures


async def _ready(http, url: str) -> bool:
    async with http.get(url) as r:
        return r.status == 200


async def test_the_primary_killed_and_the_standby_promoted_writes_resume_nothing_lost(array, balancer, certificate,
                                                                                       database):
    primary, standby = database["primary"], database["standby"]
    writes: collections.Counter[str] = collections.Counter()
    committed: list[str] = []
    stop = asyncio.Event()
    promoted_at: list[float] = []
    resumed_at: list[float] = []

    async with aiohttp.ClientSession() as http:
        async def writer() -> None:
            # A clerk adding providers through the balancer: each 201 is a commit a client saw.
            while not stop.is_set():
                try:
                    async with http.post(balancer.url("keygen", "/v1/providers"), headers=certificate["headers"],
                                         json={"cas": "B", "cui": new_cui(), "name": "SC ARRAY MEDICAL SRL",
                                               "trade_register_no": "J40/10/3456",
                                               "legal_representative": {"name": "Ion Popescu", "cnp": new_cnp()}},
                                         timeout=aiohttp.ClientTimeout(total=10)) as r:
                        writes[str(r.status)] += 1
                        if r.status == 201:
                            committed.append((await r.json())["id"])
                            if promoted_at and not resumed_at:
                                resumed_at.append(time.monotonic())
                        else:
                            await asyncio.sleep(0.05)  # the pace of a client retrying
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    writes[type(exc).__name__] += 1

        # The responders answer from memory: the database's loss must not reach OCSP.
        async with Traffic(http, balancer.url("ocsp"), certificate["path"]) as answers:
            task = asyncio.create_task(writer())
            try:
                await wait_for(lambda: len(committed) >= 100, timeout=60, what="100 writes on the primary")
                await primary._pg_ctl("-w", "-m", "immediate", "stop")  # the primary's machine dies
                killed_at = time.monotonic()
                await wait_for(lambda: any(k != "201" for k in writes), timeout=30, what="a write refused while away")
                await standby.promote()
                promoted_at.append(time.monotonic())
                before = len(committed)
                await wait_for(lambda: len(committed) >= before + 100, timeout=60,
                               what="100 writes after the promotion")
                # The responders' followers now listen on the new primary: a suspension
                # still reaches each within the second.
                _, timings = await change(http, balancer, certificate, True, "revoked", array)
            finally:
                stop.set()
                await task
    conn = await asyncpg.connect(f"postgresql://{ROLE}:{ROLE}@127.0.0.1:{standby.port}/{ROLE}")
    try:
        assert not await conn.fetchval("select pg_is_in_recovery()")
        stored = {str(r["id"]) for r in await conn.fetch("select id from keygen.providers")}
    finally:
        await conn.close()
    lost = [i for i in committed if i not in stored]
    LEDGER["3 primary killed, standby promoted"] = {
        "writes_committed": len(committed), "lost": len(lost),
        "writes_refused_in_gap": {k: v for k, v in writes.items() if k != "201"},
        "promoted_after_kill_s": round(promoted_at[0] - killed_at, 3),
        "writes_resumed_after_promotion_s": round(resumed_at[0] - promoted_at[0], 3),
        "ocsp_requests_meanwhile": answers.total, "ocsp_failed": sum(answers.failed().values()),
        **{f"suspension after promotion {k}": round(v, 3) for k, v in timings.items()}}
    assert not lost, f"{len(lost)} committed writes lost"
    # In the gap a write is refused as "away, retry" (the service's or the balancer's 503), never a 500.
    assert set(writes) <= {"201", "503"}, writes
    assert not answers.failed(), answers.failed()
    assert all(v <= WITHIN for v in timings.values()), timings


async def _connected(via, nodes) -> collections.Counter[str]:
    """The broker users connected to any of ``nodes``, with how many connections each, as
    ``via`` sees the cluster (list_connections lists every node's)."""
    # Each node listens on its own AMQP port here: a connection's server port names its node.
    ports = {node.port for node in nodes}
    listed = await via.ctl("-q", "list_connections", "user", "port", "--formatter", "json")
    return collections.Counter(row["user"] for row in json.loads(listed.stdout or "[]") if int(row["port"]) in ports)


async def test_the_broker_node_in_use_killed_a_suspension_still_reaches_every_responder(array, balancer, certificate,
                                                                                        brokers):
    nodes = brokers["nodes"]
    changes = {}
    async with aiohttp.ClientSession() as http:
        async with Traffic(http, balancer.url("ocsp"), certificate["path"]) as answers:
            state = status_of((await ask(http, array[0].url("ocsp"), certificate["path"]))[1])
            # Every service is on the first node of SIUI_AMQP_URL's list: that one goes.
            on_first = await _connected(nodes[0], nodes[:1])
            assert {"ocsp", "certs"} <= {user.removeprefix(infra.user_prefix()) for user in on_first}, on_first
            killed_at = time.monotonic()
            killed = await asyncio.to_thread(nodes[0].kill)
            # The change made at once: certs' outbox holds the event until a node takes it,
            # the responders' consumers move to another node and receive it there.
            flip = state == "revoked"
            _, changes["right after the kill"] = await change(http, balancer, certificate, not flip,
                                                              "good" if flip else "revoked", array, limit=60)
            _, changes["next one"] = await change(http, balancer, certificate, flip,
                                                  "revoked" if flip else "good", array)

            async def moved():
                others = await _connected(nodes[1], nodes[1:])
                return others if all(others[user] >= count for user, count in on_first.items()) else None

            on_others = await wait_for(moved, timeout=30, what="every connection of the first node on the others")
    LEDGER["4 broker node killed"] = {
        "node": nodes[0].name, "pid": killed, "connections_before": sum(on_first.values()),
        "connections_after_on_the_others": sum(on_others.values()), "ocsp_requests_meanwhile": answers.total,
        "ocsp_failed": sum(answers.failed().values()),
        **{f"change {when} {k}": round(v, 3) for when, timings in changes.items() for k, v in timings.items()},
        "whole_s": round(time.monotonic() - killed_at, 3)}
    assert not answers.failed(), answers.failed()
    assert all(v <= WITHIN for v in changes["next one"].values()), changes


async def test_one_host_killed_mid_traffic_fails_no_request(array, balancer, certificate):
    reads: collections.Counter[str] = collections.Counter()
    stop = asyncio.Event()

    async with aiohttp.ClientSession() as http:
        async def read_loop() -> None:
            # A clerk's pages meanwhile: the other services of the lost host are balanced too.
            while not stop.is_set():
                for service, target in READS:
                    try:
                        async with http.get(balancer.url(service, target), headers=certificate["headers"],
                                            timeout=aiohttp.ClientTimeout(total=10)) as r:
                            await r.read()
                            reads[f"{service} {r.status}"] += 1
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                        reads[f"{service} {type(exc).__name__}"] += 1

        log_before = balancer.log_path.read_text()

        def served_by(server: str) -> int:
            return balancer.log_path.read_text()[len(log_before):].count(f" ocsp/{server} ")

        async with Traffic(http, balancer.url("ocsp"), certificate["path"], clients=4) as answers:
            task = asyncio.create_task(read_loop())
            try:
                await wait_for(lambda: answers.total >= 300, timeout=30, what="traffic flowing")
                await wait_for(lambda: served_by("app2") > 0 and served_by("app1") > 0
                               and all(reads[f"{service} 200"] >= 2 for service, _ in READS), timeout=20,
                               what="both responders answering through the balancer, and the other services")
                before = {"app1": served_by("app1"), "app2": served_by("app2")}
                requests_before = answers.total
                killed_at = time.monotonic()
                pids = await asyncio.to_thread(kill_host, array[1])
                await wait_for(lambda: gone(pids), timeout=10, what="every process of host 2 gone")
                await wait_for(lambda: "ocsp/app2 is DOWN" in balancer.log_path.read_text(), timeout=10,
                               what="the balancer marking responder 2 down")
                marked_down = time.monotonic() - killed_at
                after_kill = answers.total
                await wait_for(lambda: answers.total >= after_kill + 500, timeout=60,
                               what="500 more requests after responder 2 was marked down")
            finally:
                stop.set()
                await task
    failed_reads = {k: v for k, v in reads.items() if not k.endswith(" 200")}
    LEDGER["5 one host killed"] = {
        "requests": answers.total, "failed": sum(answers.failed().values()), "outcomes": dict(answers.outcomes),
        "before_kill": requests_before, "served_before_kill_app1": before["app1"],
        "served_before_kill_app2": before["app2"], "processes_killed": len(pids),
        "marked_down_after_s": round(marked_down, 3), "after_marked_down": answers.total - after_kill,
        "p50_ms": answers.percentile_ms(0.5), "p99_ms": answers.percentile_ms(0.99),
        "max_ms": answers.percentile_ms(1.0),
        "api_reads": sum(reads.values()), "api_reads_failed": sum(failed_reads.values())}
    assert not answers.failed(), answers.failed()
    assert not failed_reads, failed_reads
