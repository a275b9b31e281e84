"""Reînnoiri în așteptare (issue 15): on the certificates screen, the renewals the
house's providers presented on the online channel, each beside the certificate it
follows, with "Aprobă" (one click: the new certificate is registered) and "Respinge"
(with the reason the provider's desktop shows)."""
from __future__ import annotations

from aiohttp import web

from shared.auth import Right

from services.console.web import api, house_choice, operator, quoted, read_form, redirect

REASON_MAX = 500  # what certs keeps (services/certs/renewals.py)


async def pending(request: web.Request) -> list[dict]:
    """The house's pending renewals (the chosen house's, for CNAS), newest first."""
    body = await api(request).get("certs", "/v1/renewals", cas=house_choice(request), status="pending",
                                  per_page=20)
    return body.get("items", [])


async def approve(request: web.Request) -> web.Response:
    """POST /reinnoiri/{id}/aproba: the new certificate is registered; its detail is shown."""
    operator(request, Right.CERTIFICATES_WRITE)
    await read_form(request)  # the CSRF token is checked on reading
    created = await api(request).post("certs", f"/v1/renewals/{quoted(request.match_info['id'])}/approve", {})
    raise redirect(f"/certificate/{quoted(str(created['id']))}", ok="reinnoire-aprobata")


async def reject(request: web.Request) -> web.Response:
    """POST /reinnoiri/{id}/respinge {motiv}: refused, with the reason."""
    operator(request, Right.CERTIFICATES_WRITE)
    form = await read_form(request)
    reason = str(form.get("motiv", "")).strip()[:REASON_MAX + 1]
    await api(request).post("certs", f"/v1/renewals/{quoted(request.match_info['id'])}/reject", {"reason": reason})
    raise redirect("/certificate", ok="reinnoire-respinsa")


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/reinnoiri/{id}/aproba", approve)
    r.add_post("/reinnoiri/{id}/respinge", reject)
