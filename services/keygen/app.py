"""The keygen service's composition root: create_app(config) builds it, without I/O."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from pyhanko.sign import signers

from shared import license
from shared.auth import TokenVerifier
from shared.clock import Clock, utc_now
from shared.db import POOL
from shared.http.operational import base_app
from shared.logging import get_logger
from shared.service import add_platform
from shared.tasks import periodic_ctx

from services.keygen import desktop, routes
from services.keygen.activation import ThrottlePolicy
from services.keygen.agreement import DEFAULT_FONTS, AgreementData, load_signer
from services.keygen.config import Config
from services.keygen.fonts import FontChoice, latin_subset
from services.keygen.issuing import KeyKit
from services.keygen.keys import agreement_day
from services.keygen.openapi import OPENAPI_DOC

log = get_logger(__name__)

PURGE_EVERY_SECONDS = 3600.0


def create_app(config: Config, *, clock: Clock = utc_now, verifier: TokenVerifier | None = None,
               signer: signers.Signer | None = None) -> web.Application:
    """The keygen app. ``clock``, ``verifier`` and ``signer`` may be replaced (tests, bench)."""
    app = base_app("keygen", OPENAPI_DOC)
    add_platform(app, config.common, schema="keygen", migrations="services.keygen",
                 verifier=verifier)
    app.cleanup_ctx.append(_kit_ctx(config, clock, signer))
    app.cleanup_ctx.append(periodic_ctx("keygen-purge-attempts", PURGE_EVERY_SECONDS,
                                        _purge_attempts(config, clock)))
    routes.add_routes(app)
    return app


def _kit_ctx(config: Config, clock: Clock, signer: signers.Signer | None):
    """Load the pepper and the document signer once, and prove at start that an agreement
    can be rendered and signed: a missing font or a bad certificate stops the start
    instead of failing the first operator's "Generare parola"."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(config.pdf_workers, thread_name_prefix="keygen-pdf")
        try:
            fonts = await asyncio.get_running_loop().run_in_executor(
                executor, _font_choices, config.font_cache_dir)
            kit = KeyKit(
                pepper=license.load_pepper(config.common.license_pepper_path),
                signer=signer or load_signer(config.docsign_cert, config.docsign_key,
                                             config.docsign_chain),
                executor=executor, clock=clock,
                policy=ThrottlePolicy(config.max_failures, config.failure_window_minutes,
                                      config.ipv6_prefix),
                fonts=fonts,
                pdf_gate=asyncio.Semaphore(config.pdf_workers))
            await kit.agreement(AgreementData(
                house="B", provider_name="Verificare la pornire", cui="12433636",
                trade_register_no=None, representative_name=None, representative_cnp=None,
                license_serial=license.generate(), date=agreement_day(clock())))
            app[routes.KIT] = kit
            yield
        finally:
            executor.shutdown(wait=True)

    return ctx


def _font_choices(cache_dir: Path | None) -> tuple[FontChoice, ...]:
    full = FontChoice(DEFAULT_FONTS)
    if cache_dir is None:
        return (full,)
    try:
        return (latin_subset(DEFAULT_FONTS, cache_dir), full)
    except OSError as exc:  # a read-only data directory: slower agreements, still correct
        log.warning("font_cache_unavailable", directory=str(cache_dir), error=repr(exc))
        return (full,)


def _purge_attempts(config: Config, clock: Clock):
    """Delete activation attempts past their retention (at start, then every hour)."""
    retention = timedelta(days=config.attempts_retention_days)

    async def purge(app: web.Application) -> None:
        before = clock() - retention
        async with app[POOL].acquire() as conn:
            deleted = await desktop.purge(conn, before)
        if deleted:
            log.info("activation_attempts_purged", deleted=deleted, before=before.isoformat())

    return purge
