"""Logging set up in one place: structlog, JSON in production, a console renderer on a TTY.

Request handlers and message consumers bind ``request_id`` / ``event_id`` into
contextvars, so every line logged while serving them carries the id.
"""
from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(service: str, log_format: str = "json", level: int = logging.INFO) -> None:
    """Configure structlog and the stdlib root logger for one service process."""
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.dev.ConsoleRenderer()
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries (aiohttp, aio-pika) log through the stdlib; keep their warnings only.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s {service} %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
