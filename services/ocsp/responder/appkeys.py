"""The responder's resources in the application (set by ``responder_ctx``)."""
from __future__ import annotations

from aiohttp import web

from services.ocsp.responder.answering import Responder
from services.ocsp.responder.presigned import PresignedStore
from services.ocsp.responder.registry import Registry

#: The live registry of this process: what the responder and the online channel read,
#: and what ``services.ocsp.state`` keeps equal to the tables.
REGISTRY = web.AppKey("ocsp_registry", Registry)
RESPONDER = web.AppKey("ocsp_responder", Responder)
#: This process's copy of the pre-signed answers every responder shares, kept by
#: ``services.ocsp.state`` like the registry.
PRESIGNED = web.AppKey("ocsp_presigned", PresignedStore)
#: GET answers' Cache-Control max-age (SIUI_OCSP_MAX_AGE).
MAX_AGE = web.AppKey("ocsp_max_age", int)
