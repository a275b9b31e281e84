"""Autoritati emitente: every house may look; only CNAS adds them."""
from __future__ import annotations

from aiohttp import web

from shared.auth import Right
from shared.clock import utc_now
from shared.events import parse_time

from services.console import certfile, texts
from services.console.api import ApiError
from services.console.web import read_form, api, operator, quoted, redirect, render


async def list_issuers(request: web.Request) -> web.Response:
    """GET /autoritati: the list (Nou only for CNAS users allowed to add)."""
    operator(request, Right.ISSUERS_READ)
    body = await api(request).get("certs", "/v1/issuers")
    return render(request, "issuers.html", {"items": [_with_overdue(i) for i in body.get("items", [])]})


async def issuer_detail(request: web.Request) -> web.Response:
    """GET /autoritati/{id}: DN, serial, validity, the certificate, its CRL status."""
    operator(request, Right.ISSUERS_READ)
    issuer = _with_overdue(await api(request).get("certs", f"/v1/issuers/{quoted(request.match_info['id'])}"))
    return render(request, "issuer.html", {"i": issuer, "crl_text": "\n".join(issuer.get("crl_urls") or []),
                                           "field_errors": {}})


async def set_crl_urls(request: web.Request) -> web.Response:
    """POST /autoritati/{id}/crl: the authority's CRL URLs, one per line (CNAS only)."""
    national_writer(request)
    issuer_id = quoted(request.match_info["id"])
    text = str((await read_form(request)).get("crl_urls", ""))[:MAX_CRL_TEXT]
    urls = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        await api(request).patch("certs", f"/v1/issuers/{issuer_id}", {"crl_urls": urls})
    except ApiError as exc:
        if exc.status != 422:
            raise
        issuer = await api(request).get("certs", f"/v1/issuers/{issuer_id}")
        return render(request, "issuer.html", {"i": issuer, "crl_text": text,
                                               "field_errors": {"crl_urls": exc.detail},
                                               "error": texts.detail_message(exc.detail, exc.status)}, status=422)
    raise redirect(f"/autoritati/{issuer_id}", ok="salvat")


async def refresh_status(request: web.Request) -> web.Response:
    """POST /autoritati/{id}/verifica: ask certs to fetch the authority's CRL now."""
    national_writer(request)
    issuer_id = quoted(request.match_info["id"])
    await read_form(request)  # the CSRF token is checked there
    await api(request).post("certs", f"/v1/issuers/{issuer_id}/refresh-status", {})
    raise redirect(f"/autoritati/{issuer_id}", ok="verificare")


async def issuer_certificate(request: web.Request) -> web.Response:
    """GET /autoritati/{id}/certificat.pem: the authority's certificate file."""
    operator(request, Right.ISSUERS_READ)
    issuer_id = quoted(request.match_info["id"])
    raw, _ = await api(request).call("GET", "certs", f"/v1/issuers/{issuer_id}/certificate.pem",
                                     accept="application/x-pem-file")
    return web.Response(body=raw, content_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="autoritate-{issuer_id}.pem"'})


def _with_overdue(issuer: dict) -> dict:
    """The issuer, marked when its newest CRL is past its nextUpdate (shown "expirat")."""
    next_update = issuer.get("crl_next_update")
    overdue = bool(next_update) and parse_time(next_update, "crl_next_update") < utc_now()
    return {**issuer, "crl_overdue": overdue}


#: The CRL URLs form: 10 URLs of 2,048 characters, with room for line ends.
MAX_CRL_TEXT = 21_000


def national_writer(request: web.Request):
    """The operator, when a CNAS user holding issuers:write (the trusted list page too)."""
    principal = operator(request)
    if not principal.is_national:
        # The console says no itself; certs would too (a county house can only view).
        raise ApiError(403, "issuing authorities are managed by CNAS; a county house can only view them")
    return operator(request, Right.ISSUERS_WRITE)


async def new_issuer_form(request: web.Request) -> web.Response:
    """GET /autoritati/nou: upload the authority's CA certificate (CNAS only)."""
    national_writer(request)
    return render(request, "issuer_new.html", {"pem": "", "field_errors": {}})


async def create_issuer(request: web.Request) -> web.Response:
    """POST /autoritati/nou: register the authority with certs."""
    national_writer(request)
    form = await read_form(request)
    upload = form.get("fisier")
    data = upload.file.read(certfile.MAX_BYTES + 1) if getattr(upload, "file", None) else b""
    pasted = str(form.get("pem", "")).strip()
    try:
        read = certfile.read_certificate(data or pasted.encode())
    except certfile.NotACertificate as exc:
        return render(request, "issuer_new.html", {"pem": pasted, "field_errors": {"fisier": str(exc)},
                                                   "error": texts.detail_message(None, 422)}, status=422)
    try:
        created = await api(request).post("certs", "/v1/issuers", {"certificate_pem": read.pem})
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = texts.field_errors(exc.errors, {"certificate_pem": "fisier"})
        return render(request, "issuer_new.html", {"pem": pasted, "field_errors": errors,
                                                   "error": texts.detail_message(exc.detail, exc.status)},
                      status=exc.status)
    raise redirect(f"/autoritati/{quoted(str(created['id']))}", ok="creat")
