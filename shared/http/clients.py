"""The client address of a request, through the trusted reverse proxies (see
``shared.addresses``); what throttles, the audit trail and logs count by."""
from __future__ import annotations

from aiohttp import web

from shared.addresses import client_address

#: The reverse proxies whose X-Forwarded-For is believed (``CommonConfig.trusted_proxies``).
TRUSTED_PROXIES = web.AppKey("trusted_proxies", frozenset)


def remote_address(request: web.Request) -> str:
    """The caller's address: the peer, or what a trusted proxy says it forwarded for."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"),
                          request.app.get(TRUSTED_PROXIES, frozenset()))
