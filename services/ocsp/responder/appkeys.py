"""The responder's resources in the application (set by ``responder_ctx``)."""
from __future__ import annotations

from aiohttp import web

from services.ocsp.responder.answering import Responder
from services.ocsp.responder.registry import Registry

#: The live registry of this process: what the responder and the online channel read,
#: and what ``services.ocsp.state`` keeps equal to the tables.
REGISTRY = web.AppKey("ocsp_registry", Registry)
RESPONDER = web.AppKey("ocsp_responder", Responder)
#: GET answers' Cache-Control max-age (SIUI_OCSP_MAX_AGE).
MAX_AGE = web.AppKey("ocsp_max_age", int)
