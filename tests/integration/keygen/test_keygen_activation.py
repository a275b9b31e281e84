"""keygen, desktop activation ("Administrare / Activare") through the real app on
PostgreSQL: a typo is 422 before any lookup and costs nothing; the current key always
activates; every other well-formed serial gets one 403 and counts the same against the
client address, which gets 429 (+ Retry-After, the same for every serial) only past its
generous limit; nothing per provider; attempts kept for SIUI_ACTIVATION_LOG_DAYS and
purged by the periodic job; a metric by outcome; never the serial in a log or a row.

Desktops at different addresses are played with X-Forwarded-For: the test client's
127.0.0.1 is configured as a trusted reverse proxy. The clock is moved past the window
between tests, so no test inherits another's refusals; each test uses its own addresses.
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from shared.http.operational import METRICS_TOKEN
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from services.keygen.activation import GENERIC_REFUSAL
from services.keygen.app import create_app
from shared import license
from tests.support.clock import FrozenClock
from tests.support.keygen_api import issued_key, make_provider, problem
from tests.support.wait import eventually

LIMIT = 100  # SIUI_ACTIVATION_MAX_FAILURES's default
WINDOW_SECONDS = 15 * 60
# What differs between two answers that are otherwise the same.
PER_REQUEST_HEADERS = {"date", "x-request-id"}


@pytest.fixture(autouse=True)
def fresh_window(clock):
    yield
    clock.advance(minutes=16)


@pytest.fixture(scope="module")
async def keyed(keygen, national):
    """A provider of house MM with a current key and a replaced one, and a key of SV."""
    provider = await make_provider(keygen, national, cas="MM", name="Policlinica Sighet")
    old = await issued_key(keygen, national, provider["id"])
    new = await issued_key(keygen, national, provider["id"], reset=True)
    other = await make_provider(keygen, national, cas="SV")
    other_key = await issued_key(keygen, national, other["id"])
    return {"provider": provider, "old": old["license_serial"], "serial": new["license_serial"],
            "other_house": other_key["license_serial"]}


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


def unissued_serial() -> str:
    return license.generate()  # well-formed, never issued


def typo(serial: str) -> str:
    swapped = "1" if serial[0] != "1" else "2"
    return swapped + serial[1:]


async def activate(client, serial, cas: str = "MM", address: str = "10.0.0.1", **extra):
    return await client.post("/v1/activations", json={"license_serial": serial, "cas": cas, **extra},
                             headers={"X-Forwarded-For": address})


async def answer(response) -> tuple[int, tuple[tuple[str, str], ...], str]:
    """Status, headers and body, without what differs between any two requests."""
    headers = sorted((k.lower(), v) for k, v in response.headers.items()
                     if k.lower() not in PER_REQUEST_HEADERS)
    return response.status, tuple(headers), await response.text()


async def refuse(client, address: str, n: int, serial=None) -> None:
    """``n`` refused attempts from ``address`` (never-issued serials unless one is given)."""
    for _ in range(n):
        await problem(await activate(client, serial or unissued_serial(), address=address), 403)


async def outcomes(client) -> dict[str, float]:
    token = client.server.app[METRICS_TOKEN].decode()
    text = await (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text()
    return {m[1]: float(m[2]) for m in
            re.finditer(r'^siui_keygen_activations_total\{outcome="([^"]+)"\} (\S+)$', text, re.M)}


async def rows_from(db, address: str) -> list[tuple]:
    return [tuple(r) for r in await db.fetch(
        """select outcome, cas, provider_id::text, failed from keygen.activation_attempts
           where address = $1 order by id""", address)]


async def test_the_right_key_activates_however_it_is_typed(keygen, keyed):
    serial = keyed["serial"]
    compact = serial.replace("-", "")
    for typed in (serial, serial.lower(), f"  {compact[:8]} {compact[8:]} ",
                  serial.replace("0", "O").replace("1", "l")):
        response = await activate(keygen, typed, cas=" mm ")
        assert response.status == 200, (typed, await response.text())
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {
            "external_user": f"{keyed['provider']['cui']}_CAS-MM",
            "provider": {"cui": keyed["provider"]["cui"], "name": "Policlinica Sighet"}, "cas": "MM"}


async def test_a_typo_or_junk_is_422_naming_the_field(keygen, keyed):
    for serial, words in ((typo(keyed["serial"]), "check character"), ("F8E73-MVXY", "17 characters"),
                          ("F8E73-MVXY-FYKL-ITG!", "not used"), (12345, "must be a string"),
                          # NUL and lone surrogates: refused by the shared input layer first.
                          (keyed["serial"][:-1] + "\x00", "control characters"),
                          (keyed["serial"][:-1] + "\ud800", "lone surrogate"),
                          (keyed["serial"] + "\u202e", "not used"),
                          (keyed["serial"] + " " * 100, "at most 64")):
        body = await problem(await activate(keygen, serial, address="10.1.0.1"), 422)
        assert words in body["errors"]["license_serial"], (serial, body)
    for cas in ("XX", "CNAS", "", "MM\x00", "\ud800", "M\u200bM", "B" * 1000):
        body = await problem(await activate(keygen, keyed["serial"], cas=cas, address="10.1.0.2"), 422)
        assert list(body["errors"]) == ["cas"], (cas, body)
    body = await problem(await activate(keygen, keyed["serial"], address="10.1.0.3", extra_field=1), 422)
    assert body["errors"] == {"extra_field": "unknown field"}
    body = await problem(await activate(keygen, keyed["serial"], address="10.1.0.3", **{"\ud800\x00": 1}), 422)
    assert body["errors"] == {"\\ud800\\x00": "unknown field"}
    huge = b'{"license_serial": 1' + b"0" * 5000 + b', "cas": "MM"}'
    response = await keygen.post("/v1/activations", data=huge, headers={"Content-Type": "application/json"})
    assert (await problem(response, 422))["errors"] == {"license_serial": "must be a string"}
    response = await keygen.post("/v1/activations", data=b"license_serial=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    await problem(response, 400)


async def test_fifty_typos_cost_nothing_and_the_key_then_activates(keygen, keyed, db):
    before = await outcomes(keygen)
    for n in range(50):
        await problem(await activate(keygen, typo(keyed["serial"]) if n % 2 else "F8E73-MVXY",
                                     address="10.2.0.1"), 422)
    assert await rows_from(db, "10.2.0.1") == []  # no throttle bookkeeping at all
    assert (await activate(keygen, keyed["serial"], address="10.2.0.1")).status == 200
    # and from the same address a wrong key is still an ordinary 403, not a 429
    await refuse(keygen, "10.2.0.1", 1)
    after = await outcomes(keygen)
    assert after["malformed"] - before["malformed"] == 50


async def test_old_other_house_and_unknown_keys_get_the_same_403_and_count_the_same(keygen, keyed, db):
    answers = set()
    for serial, cas in ((unissued_serial(), "MM"), (keyed["old"], "MM"), (keyed["serial"], "SV"),
                        (keyed["other_house"], "MM"), (keyed["old"], "SV")):
        response = await activate(keygen, serial, cas=cas, address="10.3.0.1")
        answers.add(await answer(response))
    assert len(answers) == 1, answers
    [(status, headers, text)] = answers
    headers = dict(headers)
    assert status == 403 and headers["content-type"].startswith("application/problem+json")
    assert f'"detail": "{GENERIC_REFUSAL}"' in text
    pid = keyed["provider"]["id"]
    assert [(o, failed) for o, _, _, failed in await rows_from(db, "10.3.0.1")] == [
        ("unknown-key", True), ("replaced-key", True), ("wrong-house", True), ("wrong-house", True),
        ("replaced-key", True)]
    assert {p for _, _, p, _ in await rows_from(db, "10.3.0.1")} >= {pid, None}


async def test_429_only_past_the_address_limit_the_same_for_every_serial_and_the_key_still_works(
        keygen_config, keyed):
    frozen = FrozenClock(datetime.now(timezone.utc) + timedelta(days=1))  # identical Retry-After
    async with TestClient(TestServer(create_app(keygen_config, clock=frozen))) as client:
        await refuse(client, "10.4.0.1", LIMIT - 1)
        await problem(await activate(client, keyed["old"], address="10.4.0.1"), 403)  # the 100th
        frozen.advance(minutes=5)
        throttled = set()
        for serial, cas in ((unissued_serial(), "MM"), (keyed["old"], "MM"), (keyed["serial"], "SV"),
                            (keyed["other_house"], "MM")):
            throttled.add(await answer(await activate(client, serial, cas=cas, address="10.4.0.1")))
        assert len(throttled) == 1, throttled
        [(status, headers, text)] = throttled
        headers = dict(headers)
        assert status == 429 and int(headers["retry-after"]) == WINDOW_SECONDS - 5 * 60
        assert "try again in 10 minutes" in text

        ok = await activate(client, keyed["serial"], address="10.4.0.1")  # the holder is never locked
        assert ok.status == 200, await ok.text()
        await refuse(client, "10.4.1.1", 1)  # another address: its own count

        frozen.advance(minutes=10)  # the refusals leave the window
        await problem(await activate(client, unissued_serial(), address="10.4.0.1"), 403)


async def test_an_old_key_hammered_from_a_does_not_stop_the_current_key_from_a_or_b(keygen, keyed):
    for _ in range(LIMIT + 50):
        response = await activate(keygen, keyed["old"], address="10.5.0.1")
        assert response.status in (403, 429)
    await problem(await activate(keygen, keyed["old"], address="10.5.0.1"), 429)
    for address in ("10.5.0.1", "10.5.0.2"):
        response = await activate(keygen, keyed["serial"], address=address)
        assert response.status == 200, await response.text()


async def test_no_limit_per_provider(keygen, keyed):
    for n in range(LIMIT + 20):  # the replaced key, tried from many places
        await problem(await activate(keygen, keyed["old"], address=f"10.6.{n // 250}.{n % 250}"), 403)
    response = await activate(keygen, keyed["serial"], address="10.6.9.9")
    assert response.status == 200, await response.text()


async def test_simultaneous_refusals_cannot_slip_past_the_limit(keygen, keyed, db):
    responses = await asyncio.gather(*(activate(keygen, unissued_serial(), address="10.7.0.1")
                                       for _ in range(LIMIT + 20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [403] * LIMIT + [429] * 20
    assert len(await rows_from(db, "10.7.0.1")) == LIMIT  # a throttled refusal is not stored


async def test_ipv6_clients_count_by_their_64(keygen, keyed, db):
    for n in range(LIMIT):
        await problem(await activate(keygen, unissued_serial(), address=f"2001:db8:7:1::{n + 1:x}"), 403)
    await problem(await activate(keygen, unissued_serial(), address="2001:db8:7:1:abcd::1"), 429)
    await problem(await activate(keygen, unissued_serial(), address="2001:db8:7:2::1"), 403)
    assert (await activate(keygen, keyed["serial"], address="2001:db8:7:1::1")).status == 200
    rows = await db.fetch("select distinct network from keygen.activation_attempts "
                          "where address like '2001:db8:7:1:%'")
    assert [r["network"] for r in rows] == ["2001:db8:7:1::/64"]


async def test_the_limit_survives_a_restart(keygen_config, clock, keyed):
    async with TestClient(TestServer(create_app(keygen_config, clock=clock))) as first:
        await refuse(first, "10.8.0.1", LIMIT)
    async with TestClient(TestServer(create_app(keygen_config, clock=clock))) as restarted:
        response = await activate(restarted, unissued_serial(), address="10.8.0.1")
        await problem(response, 429)
        assert int(response.headers["Retry-After"]) > 0
        assert (await activate(restarted, keyed["serial"], address="10.8.0.1")).status == 200


async def test_refusals_are_counted_by_kind_in_the_metric(keygen, keyed):
    before = await outcomes(keygen)
    await activate(keygen, keyed["serial"], address="10.9.0.1")
    await activate(keygen, keyed["old"], address="10.9.0.1")
    await activate(keygen, keyed["serial"], cas="SV", address="10.9.0.1")
    await activate(keygen, unissued_serial(), address="10.9.0.1")
    await activate(keygen, typo(keyed["serial"]), address="10.9.0.1")
    await refuse(keygen, "10.9.0.2", LIMIT)
    await problem(await activate(keygen, unissued_serial(), address="10.9.0.2"), 429)
    after = await outcomes(keygen)
    assert {k: after[k] - before.get(k, 0) for k in after} == {
        "ok": 1, "malformed": 1, "unknown-key": 1 + LIMIT, "replaced-key": 1, "wrong-house": 1,
        "throttled": 1}


async def test_attempts_are_stored_and_logged_without_the_key(keygen, keyed, db):
    with capture_logs() as logs:
        await activate(keygen, keyed["serial"], address="10.10.0.1")
        await activate(keygen, keyed["old"], address="10.10.0.1")
        await activate(keygen, typo(keyed["serial"]), address="10.10.0.1")
    attempts = [e for e in logs if e["event"] == "activation_attempt"]
    assert [e["outcome"] for e in attempts] == ["ok", "replaced-key"]  # a typo is only the request line
    assert attempts[0]["provider_id"] == keyed["provider"]["id"] and attempts[0]["address"] == "10.10.0.1"
    logged = repr(logs)
    for serial in (keyed["serial"], keyed["old"]):
        assert serial not in logged and serial.replace("-", "") not in logged
    assert await rows_from(db, "10.10.0.1") == [("ok", "MM", keyed["provider"]["id"], False),
                                                ("replaced-key", "MM", keyed["provider"]["id"], True)]


async def test_attempts_past_their_retention_are_purged_by_the_periodic_job(keygen_config, clock, db):
    config = dataclasses.replace(keygen_config, attempts_retention_days=7)
    now = clock()
    for days, address in ((8, "10.11.0.1"), (7.1, "10.11.0.2"), (6.9, "10.11.0.3")):
        await db.execute(
            """insert into keygen.activation_attempts (at, address, network, cas, outcome, failed)
               values ($1, $2, $2, 'MM', 'unknown-key', true)""", now - timedelta(days=days), address)

    async def purged():
        left = await db.fetch("select address from keygen.activation_attempts where address like '10.11.0.%'")
        return sorted(r["address"] for r in left) == ["10.11.0.3"]

    # The purge runs when the app starts, then hourly: the first run is the evidence.
    async with TestClient(TestServer(create_app(config, clock=clock))):
        await eventually(purged, what="attempts older than 7 days purged")
