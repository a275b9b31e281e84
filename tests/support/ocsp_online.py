"""The ocsp app with its :8443 online channel, as the OCSP log and online-channel tests
drive it: providers' certificates on disk (what the desktop holds), state fed as certs,
keygen and users publish it, and a TLS client that presents a provider's certificate."""
from __future__ import annotations

import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from services.ocsp.online import KEYS, ONLINE
from shared.events import EventData
from tests.support.keygen_api import key_issued
from tests.support.ocsp_harness import Feed, Issuer, registered
from tests.support.pki import Issued
from tests.support.wait import eventually


@dataclass(frozen=True)
class Provider:
    """A provider's certificate with its key on disk."""

    issued: Issued
    cert_path: Path
    key_path: Path

    @property
    def cert(self):
        return self.issued.cert

    @property
    def serial(self) -> int:
        return self.issued.serial

    @classmethod
    def of(cls, issued: Issued, directory: Path) -> "Provider":
        return cls(issued, *issued.write(directory, uuid.uuid4().hex[:10]))


class Harness:
    """The running ocsp app (HTTP client for :8104 routes, a TLS client for :8443) and the bus."""

    def __init__(self, client: TestClient, feed: Feed, pepper: bytes, root_ca: Path, directory: Path):
        self.client, self.feed, self.pepper = client, feed, pepper
        self.root_ca, self.directory = root_ca, directory

    @property
    def app(self):
        return self.client.server.app

    @property
    def online_url(self) -> str:
        return f"https://127.0.0.1:{self.app[ONLINE].port}"

    def provider(self, ca: Issuer, cui: str, **kw) -> Provider:
        """A certificate of ``ca`` with ``cui`` as its CN, written to disk."""
        return Provider.of(ca.issue(cui, **kw), self.directory)

    async def publish(self, event: EventData, cas: str) -> None:
        await self.feed.publish(event, cas)

    async def register_issuer(self, ca: Issuer) -> Issuer:
        await self.feed.issuer(ca)
        await registered(self.app, ca)
        return ca

    async def publish_certificate(self, ca: Issuer, provider: Provider, username: str, **kw) -> str:
        """The certificate's state as certs publishes it (see ``Feed.certificate``)."""
        return await self.feed.certificate(ca, provider.issued, username=username, **kw)

    async def issue_key(self, username: str, *, reset: bool = False, issued_at: datetime | None = None,
                        wait: bool = True) -> str:
        """Publish KeyIssued exactly as keygen makes it (its own key and event code, its own
        reading of the pepper); returns the clear serial, as printed on the agreement."""
        event, key = key_issued(self.pepper, username, reset=reset, issued_at=issued_at)
        await self.publish(event, username.partition("_CAS-")[2])
        if wait:
            async def current():
                record = self.app[KEYS].get(username)
                return record is not None and record.key_digest == key.digest.hex()

            await eventually(current, what="key in memory")
        return key.serial

    def tls(self, provider: Provider | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.root_ca))
        if provider is not None:
            context.load_cert_chain(provider.cert_path, provider.key_path)
        return context

    async def online(self, path: str, provider: Provider | None, *, username: str | None = None,
                     serial: str | None = None, token: str | None = None, language: str | None = None):
        """POST to the online channel; returns (status, JSON body)."""
        headers = {"Accept-Language": language} if language else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if username is not None:
            headers["Authorization"] = aiohttp.encode_basic_auth(username, serial or "")
        async with aiohttp.ClientSession() as session:
            async with session.post(self.online_url + path, ssl=self.tls(provider),
                                    headers=headers) as response:
                return response.status, await response.json(content_type=None)

    async def connect(self, provider, username=None, serial=None, **kw):
        return await self.online("/v1/online/connect", provider, username=username, serial=serial, **kw)
