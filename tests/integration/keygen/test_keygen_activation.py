"""keygen, desktop activation ("Administrare / Activare") through the real app on
PostgreSQL: 422 for a typo before any lookup, one 403 for every wrong key, the throttle
(429 + Retry-After) by address and by provider, kept across a restart, and every attempt
stored and logged without the key.

Desktops at different addresses are played with X-Forwarded-For: the test client's
127.0.0.1 is configured as a trusted reverse proxy. The clock is moved past the window
between tests, so no test inherits another's failures.
"""
from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from services.keygen.activation import GENERIC_REFUSAL
from services.keygen.app import create_app
from shared import license
from tests.support.keygen_api import issued_key, make_provider, problem

WINDOW_SECONDS = 15 * 60


@pytest.fixture(autouse=True)
def fresh_window(clock):
    yield
    clock.advance(minutes=16)


@pytest.fixture(scope="module")
async def keyed(keygen, national):
    """A provider of house MM with a current key and a replaced one."""
    provider = await make_provider(keygen, national, cas="MM", name="Policlinica Sighet")
    old = await issued_key(keygen, national, provider["id"])
    new = await issued_key(keygen, national, provider["id"], reset=True)
    return {"provider": provider, "old": old["license_serial"], "serial": new["license_serial"]}


def unissued_serial() -> str:
    return license.generate()  # well-formed, never issued


def typo(serial: str) -> str:
    swapped = "1" if serial[0] != "1" else "2"
    return swapped + serial[1:]


async def activate(client, serial, cas: str = "MM", address: str = "10.0.0.1", **extra):
    return await client.post("/v1/activations", json={"license_serial": serial, "cas": cas, **extra},
                             headers={"X-Forwarded-For": address})


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
                          ("F8E73-MVXY-FYKL-ITG!", "not used"), (12345, "must be a string")):
        body = await problem(await activate(keygen, serial, address="10.1.0.1"), 422)
        assert words in body["errors"]["license_serial"], (serial, body)
    for cas in ("XX", "CNAS", ""):
        body = await problem(await activate(keygen, keyed["serial"], cas=cas, address="10.1.0.2"), 422)
        assert "cas" in body["errors"]
    body = await problem(await activate(keygen, keyed["serial"], address="10.1.0.3", extra_field=1), 422)
    assert body["errors"] == {"extra_field": "unknown field"}
    response = await keygen.post("/v1/activations", data=b"license_serial=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    await problem(response, 400)


async def test_every_wrong_key_gets_the_same_403(keygen, keyed, national):
    other_house = await make_provider(keygen, national, cas="SV")
    other_serial = (await issued_key(keygen, national, other_house["id"]))["license_serial"]
    details = set()
    for serial, cas in ((unissued_serial(), "MM"), (keyed["old"], "MM"), (keyed["serial"], "SV"),
                        (other_serial, "MM")):
        body = await problem(await activate(keygen, serial, cas=cas, address="10.2.0.1"), 403)
        details.add((body["title"], body["detail"]))
    assert details == {("Forbidden", GENERIC_REFUSAL)}


async def test_five_failures_from_one_address_lock_it_for_fifteen_minutes(keygen, keyed, clock):
    for _ in range(5):
        await problem(await activate(keygen, unissued_serial(), address="10.5.0.1"), 403)
    locked = await activate(keygen, keyed["serial"], address="10.5.0.1")  # even the right key
    body = await problem(locked, 429)
    assert 0 < int(locked.headers["Retry-After"]) <= WINDOW_SECONDS
    assert int(locked.headers["Retry-After"]) > WINDOW_SECONDS - 60
    assert "15 minutes" in body["detail"]
    assert (await activate(keygen, keyed["serial"], address="10.5.0.2")).status == 200  # others not

    clock.advance(minutes=14)
    await problem(await activate(keygen, keyed["serial"], address="10.5.0.1"), 429)
    clock.advance(minutes=1, seconds=1)
    assert (await activate(keygen, keyed["serial"], address="10.5.0.1")).status == 200


async def test_malformed_serials_count_against_the_address(keygen, keyed):
    for _ in range(5):
        await problem(await activate(keygen, typo(keyed["serial"]), address="10.6.0.1"), 422)
    await problem(await activate(keygen, keyed["serial"], address="10.6.0.1"), 429)
    await problem(await activate(keygen, typo(keyed["serial"]), address="10.6.0.1"), 422)  # still said


async def test_five_failures_against_one_provider_lock_it_from_every_address(keygen, keyed):
    for n in range(5):  # the replaced key, tried from five places
        await problem(await activate(keygen, keyed["old"], address=f"10.7.0.{n}"), 403)
    locked = await activate(keygen, keyed["serial"], address="10.7.1.1")
    await problem(locked, 429)
    assert int(locked.headers["Retry-After"]) > 0


async def test_the_lock_survives_a_restart(keygen_config, clock, keyed):
    async with TestClient(TestServer(create_app(keygen_config, clock=clock))) as first:
        for _ in range(5):
            await problem(await activate(first, unissued_serial(), address="10.8.0.1"), 403)
    async with TestClient(TestServer(create_app(keygen_config, clock=clock))) as restarted:
        response = await activate(restarted, keyed["serial"], address="10.8.0.1")
        await problem(response, 429)
        assert "Retry-After" in response.headers


async def test_every_attempt_is_stored_and_logged_without_the_key(keygen, keyed, database_url):
    with capture_logs() as logs:
        await activate(keygen, keyed["serial"], address="10.9.0.1")
        await activate(keygen, keyed["old"], address="10.9.0.1")
        await activate(keygen, typo(keyed["serial"]), address="10.9.0.1")
    attempts = [e for e in logs if e["event"] == "activation_attempt"]
    assert [e["outcome"] for e in attempts] == ["ok", "replaced-key", "malformed"]
    assert attempts[0]["provider_id"] == keyed["provider"]["id"] and attempts[0]["address"] == "10.9.0.1"
    logged = repr(logs)
    for serial in (keyed["serial"], keyed["old"]):
        assert serial not in logged and serial.replace("-", "") not in logged

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("select outcome, cas, provider_id::text, failed from keygen.activation_attempts "
                                "where address = '10.9.0.1' order by id")
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [("ok", "MM", keyed["provider"]["id"], False),
                                        ("replaced-key", "MM", keyed["provider"]["id"], True),
                                        ("malformed", "MM", None, True)]
