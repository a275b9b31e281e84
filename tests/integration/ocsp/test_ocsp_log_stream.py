"""GET /v1/log/stream: Server-Sent Events within a second, resumable with Last-Event-ID
without loss or duplicates, scoped to the reader's house, and fed by every writer."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.log import OPLOG, LogEntry
from tests.support.ocsp_online import Harness
from tests.support.wait import eventually

NATIONAL = {"cas": "CNAS", "username": "admin"}


def entry(marker: str, n: int = 0, **kw) -> LogEntry:
    return LogEntry(**{"at": datetime.now(timezone.utc), "operation": "connect", "status": "online",
                       "latency_ms": 1.5, "client": "10.1.1.1", "username": marker, "serial": str(n),
                       "cas": "B", **kw})


class Stream:
    """An open event stream, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def next(self, timeout: float = 3.0) -> dict:
        """The next event: {"id", "data"}; comments (pings) are skipped."""
        event: dict = {}
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode().rstrip("\r\n")
                if not line:
                    if "data" in event:
                        return event
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                event[name] = json.loads(value) if name == "data" else value

    def close(self) -> None:
        self.response.close()


async def logged(harness: Harness, auth_for, marker: str, count: int) -> bool:
    response = await harness.client.get("/v1/log", params={"username": marker}, headers=auth_for(**NATIONAL))
    return len((await response.json())["items"]) >= count


async def open_stream(client: TestClient, auth_for, who=NATIONAL, *, last_id: str | None = None,
                      **params) -> Stream:
    headers = auth_for(**who)
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    response = await client.get("/v1/log/stream", params=params, headers=headers)
    assert response.status == 200 and response.content_type == "text/event-stream"
    return Stream(response)


async def test_entries_arrive_within_a_second_and_resume_without_loss(harness: Harness, auth_for):
    marker = f"sse-{uuid.uuid4().hex[:8]}"
    stream = await open_stream(harness.client, auth_for, username=marker)
    started = time.perf_counter()
    harness.app[OPLOG].record(entry(marker, 1))
    first = await stream.next()
    delay = time.perf_counter() - started
    print(f"\nstream delay {delay * 1000:.0f} ms")
    assert delay < 1.0
    assert first["data"]["serial"] == "1" and first["id"] == str(first["data"]["id"])
    stream.close()

    # Written while nobody listens; the reader comes back with the last id it saw.
    for n in (2, 3, 4):
        harness.app[OPLOG].record(entry(marker, n))
    await eventually(lambda: logged(harness, auth_for, marker, 4), what="written while away")
    stream = await open_stream(harness.client, auth_for, username=marker, last_id=first["id"])
    assert [(await stream.next())["data"]["serial"] for _ in range(3)] == ["2", "3", "4"]
    harness.app[OPLOG].record(entry(marker, 5))
    assert (await stream.next())["data"]["serial"] == "5"
    # No duplicate of what was already read: the entry written next is the next event.
    harness.app[OPLOG].record(entry(marker, 6))
    assert (await stream.next())["data"]["serial"] == "6"
    stream.close()


async def test_a_new_reader_starts_from_now_unless_it_asks(harness: Harness, auth_for):
    marker = f"sse-{uuid.uuid4().hex[:8]}"
    harness.app[OPLOG].record(entry(marker, 1))
    await eventually(lambda: logged(harness, auth_for, marker, 1), what="written before")
    stream = await open_stream(harness.client, auth_for, username=marker)
    harness.app[OPLOG].record(entry(marker, 2))
    assert (await stream.next())["data"]["serial"] == "2"
    stream.close()
    stream = await open_stream(harness.client, auth_for, username=marker, after="0")
    assert [(await stream.next())["data"]["serial"] for _ in range(2)] == ["1", "2"]
    stream.close()


async def test_a_county_reader_sees_only_their_house(harness: Harness, auth_for):
    marker = f"sse-{uuid.uuid4().hex[:8]}"
    stream = await open_stream(harness.client, auth_for, {"cas": "CJ", "username": "op.cj"},
                               username=marker, cas="B")
    for n, cas in ((1, "B"), (2, "CJ"), (3, "B"), (4, "CJ")):
        harness.app[OPLOG].record(entry(marker, n, cas=cas))
    # House B's entries, written before, between and after house CJ's, never come.
    assert [(await stream.next())["data"]["serial"] for _ in range(2)] == ["2", "4"]
    stream.close()


async def test_stream_refusals(harness: Harness, auth_for):
    assert (await harness.client.get("/v1/log/stream")).status == 401
    response = await harness.client.get("/v1/log/stream", headers={**auth_for(**NATIONAL), "Last-Event-ID": "x"})
    assert response.status == 422
    response = await harness.client.get("/v1/log/stream", params={"status": "meh"}, headers=auth_for(**NATIONAL))
    assert response.status == 422


async def test_every_process_writes_and_every_stream_sees_all(harness: Harness, auth_for, common_config):
    """A second app on the same database stands for the second worker process: what it
    logs reaches a stream served by the first, in id order, none missing."""
    other = TestClient(TestServer(create_app(Config(common=common_config, port=0, tls_port=0, workers=1))))
    await other.start_server()
    try:
        marker = f"sse-{uuid.uuid4().hex[:8]}"
        stream = await open_stream(harness.client, auth_for, username=marker)
        for n in range(200):
            app = harness.app if n % 2 else other.server.app
            app[OPLOG].record(entry(marker, n))
            if n % 20 == 0:
                await asyncio.sleep(0.03)  # interleave the two writers' batches
        events = [await stream.next() for _ in range(200)]
        assert sorted(int(e["data"]["serial"]) for e in events) == list(range(200))
        ids = [int(e["id"]) for e in events]
        assert ids == sorted(ids)
        stream.close()
    finally:
        await other.close()


async def test_a_stop_ends_open_streams(common_config, auth_for):
    client = TestClient(TestServer(create_app(Config(common=common_config, port=0, tls_port=0, workers=1))))
    await client.start_server()
    stream = await open_stream(client, auth_for)
    started = time.perf_counter()
    await client.close()
    assert time.perf_counter() - started < 5  # not held to the shutdown timeout by the stream
    stream.close()


@pytest.mark.parametrize("how", ["logout", "expiry"])
async def test_a_stream_ends_with_the_session_it_was_opened_with(harness: Harness, pki, how):
    """A stream opened with a token stops when that session ends (logout anywhere, which
    users also does for role removal, disabling and deletion; or expiry): it says so, and
    the reader comes back with a fresh token and Last-Event-ID."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from shared.auth import ALL_RIGHTS, TOKEN_AUDIENCE, TOKEN_ISSUER
    from shared.events import SessionRevoked

    now = datetime.now(timezone.utc)
    jti = str(uuid.uuid4())
    expires = now + (timedelta(seconds=2) if how == "expiry" else timedelta(minutes=10))
    token = jwt.encode({"sub": "viewer.b", "cas": "B", "rights": sorted(ALL_RIGHTS), "roles": ["house-viewer"],
                        "jti": jti, "iat": now, "exp": expires, "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE},
                       load_pem_private_key(pki.token_signing_key.read_bytes(), None), algorithm="EdDSA")
    response = await harness.client.get("/v1/log/stream", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    stream = Stream(response)
    if how == "logout":
        await harness.publish(SessionRevoked(jti=jti, username="viewer.b", expires_at=expires.isoformat()), "B")
    while True:  # entries of house B may come first; the end is an event of its own
        event = await stream.next(timeout=15)
        if event.get("event") == "session-ended":
            break
    assert event["data"] == {"reason": "revoked" if how == "logout" else "expired"}
    assert await asyncio.wait_for(response.content.read(), 5) == b""  # and the stream is over
    stream.close()


async def test_a_house_viewer_streams_the_log_with_people_masked(harness: Harness, auth_for):
    """The same entry, streamed to the house admin and to a viewer of that house."""
    serial = str(uuid.uuid4().int % 10**12)
    viewer = {"cas": "B", "username": "viewer.b", "rights": ("ocsp-log:read",)}
    admin = {"cas": "B", "username": "admin.b", "rights": ("ocsp-log:read", "ocsp-log:personal")}
    mine, theirs = (await open_stream(harness.client, auth_for, admin, serial=serial),
                    await open_stream(harness.client, auth_for, viewer, serial=serial))
    harness.app[OPLOG].record(entry("12433636_CAS-B", int(serial), client="192.0.2.77"))
    clear, masked = (await mine.next()), (await theirs.next())
    mine.close(), theirs.close()
    assert (clear["data"]["username"], clear["data"]["client"]) == ("12433636_CAS-B", "192.0.2.77")
    assert (masked["data"]["username"], masked["data"]["client"]) == ("12****36_CAS-B", "192.0.2.0/24")
    assert masked["id"] == clear["id"] and masked["data"]["serial"] == serial
    refused = await harness.client.get("/v1/log/stream", params={"username": "12433636_CAS-B"},
                                       headers=auth_for(**viewer))
    assert refused.status == 403 and "ocsp-log:personal" in (await refused.json())["detail"]
