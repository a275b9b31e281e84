"""The console's HTTP edge: the session cookie, CSRF checks, security headers, rendering
and errors shown as pages a clerk understands.

Every page request passes ``session_middleware``: the sealed cookie is opened, the token
in it verified locally (the users service's public key, like every service), and every
POST must carry the session's CSRF token. Handlers ask for :func:`operator` (the logged-in
Principal, or a redirect to the login page) and answer with :func:`render`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp_jinja2
import structlog
from aiohttp import web

from shared.validation import text_problem
from shared import errors
from shared.addresses import canonical
from shared.auth import VERIFIER, Principal, Right
from shared.houses import HOUSES
from shared.http.clients import remote_address, TRUSTED_PROXIES

from services.console import session as sessions
from services.console import texts
from services.console.api import HTTP, Api, ApiError
from services.console.config import Config

CONFIG = web.AppKey("console_config", Config)
KEYS = web.AppKey("console_cookie_keys", sessions.CookieKeys)
#: The pages whose form may be larger than the console's bound for every other form
#: (a certificate is a few kB; the national Trusted List up to a few MB): path -> bytes.
UPLOAD_LIMITS = web.AppKey("console_upload_limits", dict)

# script/style only from the console itself: no inline script can run even if some text
# ever escaped its escaping. data: images are the charts' and icons' only exception.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Over https only (RFC 6797 ignores it over http): a year, this host and its subdomains.
HSTS = "max-age=31536000; includeSubDomains"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Where no session is needed: the login page, static files, the platform endpoints.
PUBLIC_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics", "/openapi.json")


def over_https(request: web.Request) -> bool:
    """Whether the browser reached the console over https: SIUI_CONSOLE_SECURE_COOKIE says
    so, or the request came from a trusted reverse proxy (SIUI_TRUSTED_PROXIES) that says
    ``X-Forwarded-Proto: https``. Anyone else's X-Forwarded-Proto is not believed; nor is a
    list (a proxy in front sets the header, it does not append to it)."""
    if request.app[CONFIG].secure_cookie:
        return True
    if canonical(request.remote) not in request.app.get(TRUSTED_PROXIES, frozenset()):
        return False
    return request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"


def cookie_name(request: web.Request) -> str:
    # __Host-: only over TLS, only for this host and path, so no sibling host can set it.
    return "__Host-siui_console" if over_https(request) else "siui_console"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the same headers on every answer, error pages included; HSTS
    when served over https (over plain http, the dev console, it would mean nothing)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if over_https(request):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if not request.path.startswith("/static/"):
        # Pages carry the operator's data: never kept by the browser or a proxy.
        response.headers.setdefault("Cache-Control", "no-store")


def _principal(app: web.Application, session: sessions.Session) -> Principal | None:
    if not session.token:
        return None
    try:
        return app[VERIFIER].verify(session.token)
    except errors.Unauthorized:
        return None


def save_session(request: web.Request, session: sessions.Session | None) -> None:
    """Have the response carry this session (None: forget the session)."""
    request["session_out"] = session if session is not None else False


@web.middleware
async def session_middleware(request: web.Request, handler):
    """Open the session cookie (a new anonymous session when there is none or it does not
    open), verify its token, refuse a POST without the session's CSRF token, and write
    the cookie back when the session changed."""
    app = request.app
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    larger = app.get(UPLOAD_LIMITS, {}).get(request.path)
    if larger and request.method == "POST":
        request = request.clone(client_max_size=larger)
    found = sessions.unseal(app[KEYS], request.cookies.get(cookie_name(request)))
    current = found or sessions.Session()
    principal = _principal(app, current)
    if current.token and principal is None:
        current = sessions.Session(sid=current.sid)  # the token ran out: logged out
        request["expired"] = True
    request["session"] = current
    request["operator"] = principal
    request["csrf"] = sessions.csrf_token(app[KEYS], current)
    if found is None or current is not found:
        save_session(request, current)  # a first visit gets its session id here
    if request.method in UNSAFE_METHODS:
        try:
            form = await read_form(request)
        except FormUnreadable as exc:
            response = render(request, "error.html", {"title": "Formular invalid", "message": str(exc)}, status=400)
            _write_cookie(request, response)
            return response
        sent = form.get("csrf") or request.headers.get("X-CSRF-Token")
        if found is None or not sessions.csrf_ok(app[KEYS], found, sent if isinstance(sent, str) else None):
            response = await csrf_refused(request)
            _write_cookie(request, response)
            return response
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _write_cookie(request, exc)
        raise
    _write_cookie(request, response)
    return response


class FormUnreadable(Exception):
    """A form the console cannot read: the message says why, in Romanian."""


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def read_form(request: web.Request):
    """The submitted form (read once: aiohttp keeps it). Refused with ``FormUnreadable``:
    another content type, multipart without a boundary, an unknown charset, a body that
    does not decode, or a value holding NUL or control characters."""
    if request.content_type not in FORM_TYPES:
        raise FormUnreadable("Formularul nu a fost trimis ca formular HTML.")
    if request.content_type == "multipart/form-data" and "boundary=" not in request.headers.get("Content-Type", ""):
        raise FormUnreadable("Formularul trimis nu poate fi citit (lipseste delimitatorul).")
    try:
        form = await request.post()
    except (ValueError, LookupError, AssertionError, UnicodeDecodeError, KeyError) as exc:
        raise FormUnreadable("Formularul trimis nu poate fi citit.") from exc
    for name, value in form.items():
        if (isinstance(value, str) and text_problem(value)) or text_problem(name):
            raise FormUnreadable("Formularul contine caractere nepermise (de control).")
    return form


def _write_cookie(request: web.Request, response: web.StreamResponse) -> None:
    out = request.get("session_out")
    if out is None:
        return
    secure = over_https(request)
    name = cookie_name(request)
    if out is False:
        response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Strict")
        return
    response.set_cookie(name, sessions.seal(request.app[KEYS], out), path="/", httponly=True,
                        secure=secure, samesite="Strict")


async def csrf_refused(request: web.Request) -> web.Response:
    """A POST without this session's CSRF token: refused, with a way back."""
    if request.path == "/":  # the login form: cookies were off, or the form is old
        return render(request, "login.html", {"next": "", "username": "",
                                              "error": "Formularul a expirat; incercati din nou."}, status=403)
    return render(request, "error.html", {
        "title": "Formular expirat",
        "message": "Formularul nu mai este valabil (sesiunea s-a schimbat sau a expirat). "
                   "Reincarcati pagina si trimiteti-l din nou."}, status=403)


def api(request: web.Request) -> Api:
    """The services, as the operator of this request."""
    session = request.get("session")
    return Api(request.app[HTTP], request.app[CONFIG].backends,
               token=session.token if session is not None and request.get("operator") else "",
               # The id shared.http gave this request: one click, followed through every log.
               request_id=structlog.contextvars.get_contextvars().get("request_id", ""),
               client=remote_address(request))


def login_url(request: web.Request) -> str:
    """The login page, returning here afterwards."""
    target = request.path_qs if request.method == "GET" else request.path
    return "/?" + urlencode({"next": target}) if target not in ("/", "") else "/"


def operator(request: web.Request, right: str | None = None) -> Principal:
    """The logged-in operator (else a redirect to the login page), holding ``right``
    (else the 403 page)."""
    principal = request.get("operator")
    if principal is None:
        raise web.HTTPSeeOther(login_url(request))
    if right is not None and not principal.can(right):
        raise ApiError(403, f"your roles do not include the right {right!r}")
    return principal


def house_choice(request: web.Request) -> str:
    """The house the listings are limited to: a county operator's own; the one a CNAS
    user chose in the header ("" for every house)."""
    principal = request["operator"]
    return request["session"].house if principal.is_national else principal.cas


def redirect(location: str, **message) -> web.HTTPSeeOther:
    """A 303 to ``location``, with a fixed message code (``ok=salvat``) in the query."""
    if message:
        location += ("&" if "?" in location else "?") + urlencode(message)
    return web.HTTPSeeOther(location)


OK_MESSAGES = {
    "salvat": "Modificarile au fost salvate.",
    "creat": "Inregistrarea a fost creata.",
    "sters": "Inregistrarea a fost stearsa.",
    "suspendat": "Certificatul a fost suspendat.",
    "reactivat": "Certificatul a fost reactivat.",
    "iesire": "V-ati deconectat.",
    "casa": "Casa selectata a fost schimbata.",
    "verificare": "Verificarea la emitent a fost ceruta; rezultatul apare aici in cateva secunde.",
    "reinnoire-aprobata": "Reinnoirea a fost aprobata: certificatul nou este inregistrat.",
    "reinnoire-respinsa": "Reinnoirea a fost respinsa; furnizorul vede motivul la conectare.",
}


def render(request: web.Request, template: str, context: Mapping[str, Any] | None = None, *,
           status: int = 200) -> web.Response:
    """A page: the template with what every page needs (operator, house, CSRF token)."""
    principal = request.get("operator")
    base = {
        "operator": principal,
        "session": request.get("session"),
        "csrf": request.get("csrf", ""),
        "houses": HOUSES,
        "house": house_choice(request) if principal is not None else "",
        "path": request.path,
        "query": request.query,
        "ok_message": OK_MESSAGES.get(request.query.get("ok", "")),
        "Right": Right,
        "role_description": texts.role_description,
        "right_labels": texts.RIGHT_LABELS,
        "can_manage_issuers": bool(principal and principal.is_national and principal.can(Right.ISSUERS_WRITE)),
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **(context or {})}, status=status)


JSON_PATHS = ("/panou/date", "/log-ocsp/stream", "/static/", "/v1/")
HTTP_PAGES = {404: ("Pagina nu exista", "Adresa ceruta nu exista in consola."),
              405: ("Operatie nepermisa", "Aceasta pagina nu accepta operatia ceruta."),
              413: ("Fisier prea mare", "Fisierul trimis este prea mare; un certificat are cativa kB.")}


@web.middleware
async def page_errors_middleware(request: web.Request, handler):
    """Refusals shown as pages a clerk understands: a service's 401 logs out, 403, 404,
    409 and 5xx explain; an unknown address or a too large upload too. The JSON
    endpoints keep answering problem+json (through the shared middleware)."""
    try:
        return await handler(request)
    except ApiError as exc:
        if request.path.startswith(JSON_PATHS):
            raise as_domain_error(exc) from None
        if exc.status == 401:
            current = request.get("session") or sessions.Session()
            save_session(request, sessions.Session(sid=current.sid))
            redirect_to = web.HTTPSeeOther(login_url(request))
            _write_cookie(request, redirect_to)
            raise redirect_to from None
        title = {403: "Acces interzis", 404: "Nu exista"}.get(exc.status, "Operatia nu a reusit")
        status = exc.status if exc.status in (403, 404, 409, 422, 429, 503) else 502
        response = render(request, "error.html", {
            "title": title, "message": texts.detail_message(exc.detail, exc.status),
            "errors": texts.field_errors(exc.errors)}, status=status)
    except FormUnreadable as exc:
        response = render(request, "error.html", {"title": "Formular invalid", "message": str(exc)}, status=400)
    except web.HTTPException as exc:
        if exc.status not in HTTP_PAGES or request.path.startswith(JSON_PATHS):
            raise
        title, message = HTTP_PAGES[exc.status]
        response = render(request, "error.html", {"title": title, "message": message}, status=exc.status)
    _write_cookie(request, response)
    return response


def as_domain_error(exc: ApiError) -> errors.DomainError:
    """JSON endpoints answer problem+json through the shared middleware."""
    kinds = {401: errors.Unauthorized, 403: errors.Forbidden, 404: errors.NotFound, 409: errors.Conflict,
             422: errors.Invalid}
    kind = kinds.get(exc.status, errors.Unavailable)
    return kind(exc.detail, errors=exc.errors)


def page_link(request: web.Request, **changes) -> str:
    """This page's URL with some query parameters changed (paging, filters)."""
    query = {**request.query, **{k: v for k, v in changes.items()}}
    query = {k: v for k, v in query.items() if v not in (None, "") and k not in ("ok",)}
    return request.path + ("?" + urlencode(query) if query else "")


def quoted(value: str) -> str:
    """A path segment taken from data (user names, ids)."""
    return quote(value, safe="")
