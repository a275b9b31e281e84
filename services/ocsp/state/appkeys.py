"""The state follower's resources in the application (set by ``state_ctx``)."""
from __future__ import annotations

from aiohttp import web

from services.ocsp.state.follower import StateFollower
from services.ocsp.state.presigner import Presigner

#: The AES-256 key that encrypts delegated signers' keys at rest (``signers``).
DATA_KEY = web.AppKey("ocsp_data_key", bytes)
#: This process's follower of the tables (the presigner listens to what it applies).
FOLLOWER = web.AppKey("ocsp_state_follower", StateFollower)
#: This process's candidate for presigner (``leading`` when it holds the lock).
PRESIGNER = web.AppKey("ocsp_presigner", Presigner)
