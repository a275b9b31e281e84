"""The load: house operators driving the real APIs, every answer recorded by status.

Operators do what the seed's screens do: a provider (*Persoane juridice*) and its key
(*Generare parola*), and the *Suspendat* box of a registered certificate. A request that
fails is tried again later, as an operator would, until it is answered: a provider
whose first POST may have committed is found by its CUI (409), a key whose first POST
may have committed answers 409 ("already has a key"). So each key asked is known to be
issued, and each certificate's final state asked is the last one certs acknowledged.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from tests.chaos import ocsp
from tests.support.identities import new_cui

REQUEST_TIMEOUT = 5.0
HOUSES = ("B", "CJ", "IS", "TM")
RETRY_AFTER_CAP = 1.0  # seconds an operator here waits at most on Retry-After (it asks for 5)


class Recorder:
    """Every HTTP answer of one scenario, by status (``conn``/``timeout`` when none came)."""

    def __init__(self) -> None:
        self.by_status: Counter[str] = Counter()
        self.server_errors: list[str] = []   # 5xx other than 503 with Retry-After, with where

    def add(self, service: str, method: str, route: str, status: int | str, retry_after: str | None) -> None:
        label = str(status)
        if status == 503 and retry_after is None:
            label = "503-no-Retry-After"
        self.by_status[label] += 1
        if isinstance(status, int) and status >= 500 and label != "503":
            self.server_errors.append(f"{status} {service} {method} {route}")

    def errors(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.by_status.items()) if not k.startswith("2")}


class Api:
    """HTTP to the stack as the national admin, every answer into ``recorder``."""

    def __init__(self, stack, token: str):
        self.stack, self.token = stack, token
        self.recorder = Recorder()
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Api":
        self.http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()

    async def call(self, method: str, service: str, path: str, route: str | None = None, **kw):
        """``(status or None, JSON body or None, Retry-After or None)``."""
        try:
            async with self.http.request(method, self.stack.url(service, path),
                                         timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT), **kw) as r:
                retry_after = r.headers.get("Retry-After")
                self.recorder.add(service, method, route or path, r.status, retry_after)
                try:
                    body = await r.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    body = None
                return r.status, body, retry_after
        except asyncio.TimeoutError:
            self.recorder.add(service, method, route or path, "timeout", None)
        except (aiohttp.ClientError, OSError):
            self.recorder.add(service, method, route or path, "conn", None)
        return None, None, None


async def login(stack) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(stack.url("users", "/v1/sessions"),
                             json={"username": "admin", "password": stack.admin_password}) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"admin login: {r.status} {await r.text()}")
            return (await r.json())["token"]


# -- keys --------------------------------------------------------------------------------

@dataclass
class KeyAsk:
    """One provider and its first key: issued once an answer says so."""

    cui: str
    cas: str
    tag: str
    provider_id: str | None = None
    issued: bool = False
    issued_at: float | None = None

    @property
    def username(self) -> str:
        return f"{self.cui}_CAS-{self.cas}"


def provider_name(tag: str) -> str:
    return f"SC CHAOS {tag} SRL"


async def advance_key(api: Api, ask: KeyAsk) -> float | None:
    """One try at what ``ask`` still lacks (its provider, then its key; ``ask.issued``
    once answered). Returns how long to wait before the next try (None: done)."""
    if ask.provider_id is None:
        status, body, retry = await api.call("POST", "keygen", "/v1/providers", "/v1/providers",
                                             json={"cas": ask.cas, "cui": ask.cui, "name": provider_name(ask.tag)})
        if status == 201:
            ask.provider_id = body["id"]
        elif status == 409:  # an earlier try committed without our seeing its answer
            status, body, retry = await api.call("GET", "keygen", "/v1/providers", "/v1/providers",
                                                 params={"q": ask.cui, "cas": ask.cas})
            found = [p for p in (body or {}).get("items", []) if p.get("cui") == ask.cui]
            if status != 200 or not found:
                return _retry_after(retry)
            ask.provider_id = found[0]["id"]
        else:
            return _retry_after(retry)
    status, body, retry = await api.call("POST", "keygen", f"/v1/providers/{ask.provider_id}/activation-key",
                                         "/v1/providers/{id}/activation-key", json={"reset": False})
    if status in (201, 409):  # 409: the provider has its key: an earlier try of ours issued it
        ask.issued, ask.issued_at = True, time.monotonic()
        return None
    return _retry_after(retry)


def _retry_after(value: str | None) -> float:
    try:
        return min(float(value), RETRY_AFTER_CAP) if value else 0.2
    except ValueError:
        return 0.2


# -- certificate states ------------------------------------------------------------------

@dataclass
class Cert:
    """A registered certificate, the state last acknowledged, and a change in flight."""

    id: str
    serial: int
    username: str
    suspended: bool = False
    pending: bool | None = None
    acked: int = 0   # acknowledged changes in the current scenario


async def advance_state(api: Api, cert: Cert) -> float | None:
    """One try at ``cert.pending``; how long to wait before the next (None: acknowledged)."""
    status, body, retry = await api.call("PATCH", "certs", f"/v1/certificates/{cert.id}", "/v1/certificates/{id}",
                                         json={"suspended": cert.pending})
    if status == 200 and body is not None and body.get("suspended") == cert.pending:
        cert.suspended, cert.pending = cert.pending, None
        cert.acked += 1
        return None
    return _retry_after(retry)


# -- the load of one scenario ------------------------------------------------------------

@dataclass
class Load:
    """Keys and suspensions at a steady rate while a fault happens; what was asked."""

    api: Api
    tag: str
    certs: list[Cert]
    keys_per_second: float
    changes_per_second: float
    asks: list[KeyAsk] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)   # certificate ids whose state was asked

    def new_ask(self) -> KeyAsk:
        ask = KeyAsk(new_cui(), random.choice(HOUSES), self.tag)
        self.asks.append(ask)
        return ask

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._keys(stop)), asyncio.create_task(self._states(stop)),
                 asyncio.create_task(self._console(stop))]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _keys(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.keys_per_second
        while not stop.is_set():
            began = time.monotonic()
            pending = [a for a in self.asks if not a.issued]
            ask = pending[0] if pending and random.random() < 0.5 else self.new_ask()
            await advance_key(self.api, ask)
            await _pause(stop, interval - (time.monotonic() - began))

    async def _states(self, stop: asyncio.Event) -> None:
        interval = 1.0 / self.changes_per_second
        while not stop.is_set():
            began = time.monotonic()
            waiting = [c for c in self.certs if c.pending is not None]
            if waiting and random.random() < 0.5:
                cert = waiting[0]
            else:
                free = [c for c in self.certs if c.pending is None]
                if not free:
                    cert = waiting[0]
                else:
                    cert = random.choice(free)
                    cert.pending = not cert.suspended
            self.touched.add(cert.id)
            await advance_state(self.api, cert)
            await _pause(stop, interval - (time.monotonic() - began))

    async def _console(self, stop: asyncio.Event) -> None:
        # A clerk's browser loading the console's login page now and then.
        while not stop.is_set():
            await self.api.call("GET", "console", "/", "/")
            await _pause(stop, 0.5)

    async def catch_up(self, deadline: float) -> tuple[list[KeyAsk], list[Cert]]:
        """After the fault: retry what is still unanswered until ``deadline`` (monotonic);
        returns what never was."""
        while time.monotonic() < deadline:
            keys = [a for a in self.asks if not a.issued]
            certs = [c for c in self.certs if c.pending is not None]
            if not keys and not certs:
                break
            waits = [await advance_key(self.api, a) for a in keys[:10]]
            waits += [await advance_state(self.api, c) for c in certs[:10]]
            await asyncio.sleep(max([w or 0 for w in waits] + [0.1]))
        return [a for a in self.asks if not a.issued], [c for c in self.certs if c.pending is not None]


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        try:
            await asyncio.wait_for(stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass


# -- what the system shows ---------------------------------------------------------------

async def external_users(api: Api, tag: str) -> dict[str, int] | None:
    """Users' external users of the scenario ``tag`` (by provider name), with how many
    times each is listed; None when the list could not be read whole."""
    seen: dict[str, int] = {}
    page = 1
    while True:
        status, body, _ = await api.call("GET", "users", "/v1/users", "/v1/users",
                                         params={"type": "external", "q": f"chaos {tag}".lower(),
                                                 "per_page": "100", "page": str(page)})
        if status != 200 or body is None:
            return None
        for item in body["items"]:
            seen[item["username"]] = seen.get(item["username"], 0) + 1
        if page >= (body.get("pages") or 1):
            return seen
        page += 1


async def user_listed(api: Api, ask: KeyAsk) -> bool:
    status, body, _ = await api.call("GET", "users", "/v1/users", "/v1/users",
                                     params={"type": "external", "q": ask.cui})
    return status == 200 and any(i["username"] == ask.username for i in body["items"])


async def ocsp_reading(http: aiohttp.ClientSession, ocsp_url: str, issuer: ocsp.Issuer, cert: Cert) -> str:
    return await ocsp.ask(http, ocsp_url, issuer.request(cert.serial))


def expected_reading(cert: Cert) -> str:
    return "revoked" if cert.suspended else "good"
