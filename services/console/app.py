"""The console's composition root: pages in Romanian over the services' JSON APIs.
No I/O here: the HTTP client, the token key and the cookie keys open in cleanup_ctx."""
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiohttp_jinja2
import jinja2
from aiohttp import web

from shared.auth import TokenVerifier
from shared.broker import broker_ctx
from shared.service import verifier_ctx
from shared.http.clients import TRUSTED_PROXIES
from shared.http.operational import READINESS, base_app, metrics_token_ctx

from services.console import (certificates, dashboard, issuers, login, ocsp_log, providers, renewals, texts,
                              trusted_list, users)
from services.console.api import HTTP, http_ctx
from services.console.config import Config
from services.console.openapi import OPENAPI_DOC
from services.console.session import CookieKeys
from services.console.web import CONFIG, KEYS, UPLOAD_LIMITS, add_security_headers, page_errors_middleware, session_middleware

HERE = Path(__file__).parent
UPLOAD_LIMIT = 256 * 1024  # a certificate upload is a few kB


def create_app(config: Config, *, keys: CookieKeys | None = None,
               verifier: TokenVerifier | None = None) -> web.Application:
    """The console. ``keys`` and ``verifier`` replace the ones read from data_dir (tests)."""
    app = base_app("console", OPENAPI_DOC, middlewares=[page_errors_middleware, session_middleware],
                   client_max_size=UPLOAD_LIMIT)
    app[CONFIG] = config
    app[UPLOAD_LIMITS] = {trusted_list.PATH: trusted_list.UPLOAD_LIMIT}
    # Whose X-Forwarded-Proto (and X-Forwarded-For) is believed: the TLS proxy in front.
    app[TRUSTED_PROXIES] = config.common.trusted_proxies
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=jinja2.select_autoescape(default=True))
    env.filters.update(data=texts.show_date, timp=texts.show_time)
    app.on_response_prepare.append(add_security_headers)
    app.cleanup_ctx.append(metrics_token_ctx(config.common.metrics_token_path))
    app.cleanup_ctx.append(_keys_ctx(config, keys))
    # Logouts done elsewhere (another tab, the API, an admin removing roles) arrive as
    # SessionRevoked; the console follows them like every service, so a revoked session
    # is logged out here at its next page.
    # As its own broker user, siui-console: it may follow logouts, never publish or consume.
    common = config.common
    app.cleanup_ctx.append(broker_ctx(common.amqp_url, common.events_exchange, data_dir=common.data_dir,
                                      service="console", user_prefix=common.amqp_user_prefix))
    app.cleanup_ctx.append(verifier_ctx(common, verifier, service="console"))
    app.cleanup_ctx.append(http_ctx(config))
    app.cleanup_ctx.append(dashboard.probe_ctx(config))
    app[READINESS].append(users_service_answers)
    app[ocsp_log.STREAMS] = set()
    app.on_shutdown.append(ocsp_log.close_streams)
    add_routes(app)
    return app


def _keys_ctx(config: Config, keys: CookieKeys | None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[KEYS] = keys or CookieKeys.from_file(config.common.data_key_path)
        yield

    return ctx


async def users_service_answers(app: web.Application) -> None:
    """Ready when the users service answers: nobody can log in otherwise."""
    url = app[CONFIG].backends["users"] + "/healthz"
    async with app[HTTP].get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
        if response.status != 200:
            raise ConnectionError(f"users service answered {response.status}")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", login.login_page)
    r.add_post("/", login.login)
    r.add_post("/iesire", login.logout)
    r.add_post("/casa", login.switch_house)
    r.add_get("/furnizori", providers.list_providers)
    r.add_get("/furnizori/nou", providers.new_provider_form)
    r.add_post("/furnizori/nou", providers.create_provider)
    r.add_get("/furnizori/{id}", providers.provider_detail)
    r.add_post("/furnizori/{id}", providers.save_provider)
    r.add_post("/furnizori/{id}/cheie", providers.issue_key)
    r.add_get("/utilizatori", users.list_users)
    r.add_get("/utilizatori/nou", users.new_user_form)
    r.add_post("/utilizatori/nou", users.create_user)
    r.add_get("/utilizatori/{username}", users.user_detail)
    r.add_post("/utilizatori/{username}", users.save_user)
    r.add_post("/utilizatori/{username}/roluri", users.save_roles)
    r.add_post("/utilizatori/{username}/sterge", users.delete_user)
    r.add_get("/certificate", certificates.list_certificates)
    r.add_get("/certificate/nou", certificates.new_certificate_form)
    r.add_post("/certificate/nou", certificates.create_certificate)
    r.add_get("/certificate/{id}", certificates.certificate_detail)
    r.add_post("/certificate/{id}", certificates.set_suspended)
    renewals.add_routes(r)
    r.add_get("/log-ocsp", ocsp_log.log_page)
    r.add_get("/log-ocsp/stream", ocsp_log.log_stream)
    r.add_get("/autoritati", issuers.list_issuers)
    r.add_get("/autoritati/nou", issuers.new_issuer_form)
    r.add_get(trusted_list.PATH, trusted_list.trusted_list_form)
    r.add_post(trusted_list.PATH, trusted_list.upload_trusted_list)
    r.add_post(trusted_list.PATH + "/preia", trusted_list.fetch_trusted_list)
    r.add_post(trusted_list.PATH + "/aplica", trusted_list.apply_trusted_list)
    r.add_post("/autoritati/nou", issuers.create_issuer)
    r.add_get("/autoritati/{id}", issuers.issuer_detail)
    r.add_get("/autoritati/{id}/certificat.pem", issuers.issuer_certificate)
    r.add_post("/autoritati/{id}/crl", issuers.set_crl_urls)
    r.add_post("/autoritati/{id}/verifica", issuers.refresh_status)
    r.add_get("/panou", dashboard.dashboard_page)
    r.add_get("/panou/date", dashboard.dashboard_data)
    r.add_static("/static", HERE / "static", name="static", append_version=True)
