"""Lista de incredere: CNAS uploads the national Trusted List (ETSI TS 119 612), sees what
it would change among the issuing authorities, and applies it in one action.

The console only carries the file: certs verifies the list's XML signature against the
configured list operator, reads it, keeps it and computes the difference; applying
recomputes it against the issuers as they are then, so a second apply changes nothing.
"""
from __future__ import annotations

import json

from aiohttp import web

from services.console import texts
from services.console.api import ApiError
from services.console.issuers import national_writer
from services.console.web import api, read_form, render

PATH = "/autoritati/lista-incredere"
#: Romania's list is well under 2 MB; certs refuses above its own SIUI_CERTS_TL_MAX_BYTES.
#: The console's other forms keep their 256 KB bound: only this page reads more.
UPLOAD_LIMIT = 4 * 1024 * 1024


async def trusted_list_form(request: web.Request) -> web.Response:
    """GET /autoritati/lista-incredere: choose the list's XML file, or fetch it from the
    configured address; the list applied last (CNAS only)."""
    national_writer(request)
    return render(request, "trusted_list.html", {"source": await _source(request), "field_errors": {}})


async def fetch_trusted_list(request: web.Request) -> web.Response:
    """POST /autoritati/lista-incredere/preia: certs downloads the list from SIUI_CERTS_TL_URL."""
    national_writer(request)
    await read_form(request)  # the CSRF token is checked there
    try:
        diff = await api(request).post("certs", "/v1/trusted-list/fetch", {})
    except ApiError as exc:
        if exc.status not in (409, 422, 502):
            raise
        return await _refused(request, _why_refused(exc), exc.status)
    return render(request, "trusted_list.html", {"diff": diff, "field_errors": {}})


async def upload_trusted_list(request: web.Request) -> web.Response:
    """POST /autoritati/lista-incredere: send the file to certs; show the difference."""
    national_writer(request)
    form = await read_form(request)
    upload = form.get("fisier")
    data = upload.file.read(UPLOAD_LIMIT + 1) if getattr(upload, "file", None) else b""
    if not data:
        return await _refused(request, "Alegeti fisierul listei de incredere (XML).", 422)
    if len(data) > UPLOAD_LIMIT:
        return await _refused(request, "Fisierul este prea mare pentru o lista de incredere.", 413)
    try:
        raw, _ = await api(request).call("POST", "certs", "/v1/trusted-list",
                                         document=(data, "application/xml"))
    except ApiError as exc:
        if exc.status not in (409, 413, 415, 422):
            raise
        return await _refused(request, _why_refused(exc), exc.status)
    return render(request, "trusted_list.html", {"diff": json.loads(raw), "field_errors": {}})


async def apply_trusted_list(request: web.Request) -> web.Response:
    """POST /autoritati/lista-incredere/aplica: apply the list just shown (by its import id)."""
    national_writer(request)
    import_id = str((await read_form(request)).get("import_id", ""))[:64]
    try:
        result = await api(request).post("certs", "/v1/trusted-list/apply", {"import_id": import_id})
    except ApiError as exc:
        if exc.status not in (404, 422):
            raise
        return await _refused(request, texts.detail_message(exc.detail, exc.status), exc.status)
    return render(request, "trusted_list.html", {"applied": result, "field_errors": {}})


async def _source(request: web.Request) -> dict:
    """Where the list comes from and the one applied last (GET /v1/trusted-list)."""
    return await api(request).get("certs", "/v1/trusted-list")


async def _refused(request: web.Request, message: str, status: int) -> web.Response:
    return render(request, "trusted_list.html", {"source": await _source(request),
                                                 "error": "Lista de incredere nu a fost acceptata.",
                                                 "field_errors": {"fisier": message}}, status=status)


def _why_refused(exc: ApiError) -> str:
    """In Romanian, with certs' own reason kept (a signature that does not verify, ...)."""
    if exc.status == 409 and "SIUI_CERTS_TL_OPERATOR_CERT" in exc.detail:
        return ("Certificatul operatorului listei nu este configurat (SIUI_CERTS_TL_OPERATOR_CERT); "
                "lista nu poate fi verificata.")
    if exc.status == 409 and "SIUI_CERTS_TL_URL" in exc.detail:
        return "Nu este configurata adresa listei (SIUI_CERTS_TL_URL); incarcati fisierul."
    if exc.status == 502:
        return f"Lista nu a putut fi descarcata: {exc.detail}"
    if exc.status == 413:
        return "Fisierul este prea mare pentru o lista de incredere."
    if exc.status == 409:
        return texts.detail_message(exc.detail, exc.status)
    return f"Lista a fost refuzata: {exc.detail}"
