"""The OCSP log's resources in the application (set by ``log_ctx`` and ``add_routes``)."""
from __future__ import annotations

from weakref import WeakSet

from aiohttp import web

from services.ocsp.log.buffer import OpLog
from services.ocsp.log.feed import LogFeed

#: The buffer every answer and connect is recorded into (``OpLog.record``).
OPLOG = web.AppKey("ocsp_oplog", OpLog)
LOG_FEED = web.AppKey("ocsp_log_feed", LogFeed)
#: The live streams being served, ended at shutdown.
STREAMS = web.AppKey("ocsp_log_streams", WeakSet)
