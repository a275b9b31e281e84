"""The state follower's resources in the application (set by ``state_ctx``)."""
from __future__ import annotations

from aiohttp import web

#: The AES-256 key that encrypts delegated signers' keys at rest (``signers``).
DATA_KEY = web.AppKey("ocsp_data_key", bytes)
