"""Downloading a CRL, bounded: http/https only, no redirects, timeouts, a size cap, a host
allow-list, and only to addresses ``crl.address_allowed`` accepts (checked on the
addresses actually connected to, so a name that resolves elsewhere later cannot slip by).
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .crl import address_allowed, host_allowed, url_problem

_CHUNK = 64 * 1024


class FetchError(Exception):
    """Why a CRL could not be downloaded; the text is what ``status_error`` shows."""


@dataclass(frozen=True)
class FetchLimits:
    """The bounds of every download (from the certs Config)."""

    max_bytes: int
    timeout_seconds: float
    allowed_hosts: tuple[str, ...]
    allow_loopback: bool


class _AllowedAddresses(AbstractResolver):
    """A resolver that hands the connector only the addresses a CRL may come from."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [entry for entry in found if address_allowed(entry["host"], self._allow_loopback)]
        if not kept:
            raise OSError(f"{host} resolves to no address a CRL may be fetched from")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def client_session(limits: FetchLimits) -> aiohttp.ClientSession:
    """The one HTTP client of the fetcher (opened in its cleanup context)."""
    timeout = aiohttp.ClientTimeout(total=limits.timeout_seconds, connect=min(10.0, limits.timeout_seconds))
    connector = aiohttp.TCPConnector(resolver=_AllowedAddresses(limits.allow_loopback), limit=4)
    # trust_env=False: no proxy from the environment decides where a CRL request goes.
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                 headers={"Accept": "application/pkix-crl, */*;q=0.5",
                                          "Accept-Encoding": "identity", "User-Agent": "siui-certs-crl"})


async def fetch_crl(session: aiohttp.ClientSession, url: str, limits: FetchLimits) -> bytes:
    """The body at ``url``, at most ``limits.max_bytes``; FetchError otherwise."""
    problem = url_problem(url)
    if problem:
        raise FetchError(f"{url[:200]}: {problem}")
    host = urlsplit(url).hostname or ""
    if not host_allowed(host, limits.allowed_hosts):
        raise FetchError(f"{host} is not in the CRL hosts allow-list (SIUI_CERTS_CRL_HOSTS)")
    if _is_address(host) and not address_allowed(host, limits.allow_loopback):
        raise FetchError(f"{host}: not an address a CRL may be fetched from")
    try:
        async with session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise FetchError(f"{url}: HTTP {response.status}")
            if response.content_length is not None and response.content_length > limits.max_bytes:
                raise FetchError(f"{url}: {response.content_length} bytes, more than {limits.max_bytes}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body.extend(chunk)
                if len(body) > limits.max_bytes:
                    raise FetchError(f"{url}: more than {limits.max_bytes} bytes")
            return bytes(body)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(f"{url}: no complete answer within {limits.timeout_seconds:g} s") from None
    except aiohttp.ClientConnectorError as exc:
        # The resolver's own refusal is in os_error; aiohttp's text would drop it.
        detail = str(exc.os_error) if str(exc.os_error or "") not in ("", "None") else str(exc)
        raise FetchError(f"{url}: cannot connect: {detail[:300]}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise FetchError(f"{url}: {exc.__class__.__name__}: {str(exc)[:300]}") from None


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
