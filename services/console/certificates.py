"""Certificate utilizatori: the list with its filters, "Nou" (the seed's form, or the
certificate file itself), and the detail with the *Suspendat* check box."""
from __future__ import annotations

from aiohttp import web

from shared.auth import Right

from services.console import certfile, forms, renewals, texts
from services.console.api import ApiError
from shared.usernames import external_username

from services.console.web import read_form, api, house_choice, operator, page_link, quoted, redirect, render

SUSPENDED_CHOICES = {"": "Toate", "da": "Da", "nu": "Nu"}
NEW_FIELDS = ("provider", "serial", "issuer_id", "username", "certificate_pem")


async def list_certificates(request: web.Request) -> web.Response:
    """GET /certificate: filters Utilizator, Furnizor, Suspendat, expira in N zile."""
    principal = operator(request, Right.CERTIFICATES_READ)
    query = request.query
    page = forms.page_number(query.get("pagina"))
    filters = {"utilizator": query.get("utilizator", "").strip(), "furnizor": query.get("furnizor", "").strip(),
               "suspendat": query.get("suspendat", "") if query.get("suspendat") in SUSPENDED_CHOICES else "",
               "expira": str(forms.page_number(query.get("expira"), 0, 3650) or "") if query.get("expira") else ""}
    body = await api(request).get(
        "certs", "/v1/certificates", cas=house_choice(request), username=filters["utilizator"],
        provider=filters["furnizor"], suspended={"da": "true", "nu": "false"}.get(filters["suspendat"]),
        expiring_within_days=filters["expira"], page=page, per_page=20)
    return render(request, "certificates.html", {
        "items": body.get("items", []), "paging": forms.Paging.of(body, page, 20), "filters": filters,
        "suspended_choices": SUSPENDED_CHOICES, "page_link": lambda **kw: page_link(request, **kw),
        "can_write": principal.can(Right.CERTIFICATES_WRITE), "renewals": await renewals.pending(request),
        "reason_max": renewals.REASON_MAX})


async def _issuers(request: web.Request) -> list[dict]:
    return (await api(request).get("certs", "/v1/issuers")).get("items", [])


async def new_certificate_form(request: web.Request) -> web.Response:
    """GET /certificate/nou: Furnizor, Numar serial, Autoritate emitenta (from the list),
    Utilizator; or the certificate file."""
    operator(request, Right.CERTIFICATES_WRITE)
    values = dict.fromkeys(NEW_FIELDS, "")
    values["username"] = request.query.get("utilizator", "")
    values["provider"] = request.query.get("furnizor", "")
    return render(request, "certificate_new.html", {"values": values, "issuers": await _issuers(request),
                                                    "field_errors": {}, "read": None})


async def create_certificate(request: web.Request) -> web.Response:
    """POST /certificate/nou: "Citeste certificatul" shows what the file holds;
    "Salveaza" registers it (the file, or the serial and the chosen authority)."""
    principal = operator(request, Right.CERTIFICATES_WRITE)
    form = await read_form(request)
    values = {name: str(form.get(name, "")).strip() for name in NEW_FIELDS}
    issuers = await _issuers(request)
    context = {"values": values, "issuers": issuers, "field_errors": {}, "read": None}
    upload = form.get("fisier")
    data = upload.file.read(certfile.MAX_BYTES + 1) if getattr(upload, "file", None) else b""
    if data or values["certificate_pem"]:
        try:
            read = certfile.read_certificate(data or values["certificate_pem"].encode())
        except certfile.NotACertificate as exc:
            return render(request, "certificate_new.html", {**context, "field_errors": {"fisier": str(exc)},
                                                            "error": texts.detail_message(None, 422)}, status=422)
        values["certificate_pem"] = read.pem
        issuer = certfile.matching_issuer(issuers, read)
        values["serial"] = str(read.serial)
        values["issuer_id"] = issuer["id"] if issuer else ""
        if read.common_name and read.common_name.isdigit():
            values["provider"] = values["provider"] or read.common_name
            house = house_choice(request) or principal.cas
            if not values["username"] and house != "CNAS":
                values["username"] = external_username(read.common_name, house)
        context.update(read=read, read_issuer=issuer)
        if form.get("actiune") == "citeste":
            return render(request, "certificate_new.html", context)
        body = {"username": values["username"], "certificate_pem": read.pem}
    else:
        body = {"username": values["username"], "serial": values["serial"], "issuer_id": values["issuer_id"]}
    if values["provider"]:
        body["provider"] = values["provider"]
    try:
        created = await api(request).post("certs", "/v1/certificates", body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = texts.field_errors(exc.errors, {"certificate_pem": "fisier", "issuer": "issuer_id"})
        return render(request, "certificate_new.html", {
            **context, "field_errors": errors, "error": texts.detail_message(exc.detail, exc.status)},
            status=exc.status)
    raise redirect(f"/certificate/{quoted(str(created['id']))}", ok="creat")


async def certificate_detail(request: web.Request) -> web.Response:
    """GET /certificate/{id}: Suii user name, schema, org unit, Suspendat, Ultima
    utilizare, the provider, the issuer's certificate file, the history."""
    principal = operator(request, Right.CERTIFICATES_READ)
    certificate = await api(request).get("certs", f"/v1/certificates/{quoted(request.match_info['id'])}")
    return render(request, "certificate.html", {
        "c": certificate,
        "can_suspend": principal.can(Right.CERTIFICATES_SUSPEND),
        "history_words": {"registered": "inregistrat", "suspended": "suspendat", "reinstated": "reactivat",
                          "revoked": "revocat", "revoked_by_issuer": "revocat de emitent",
                          "renewed": "reinnoit"}})


async def set_suspended(request: web.Request) -> web.Response:
    """POST /certificate/{id}: the *Suspendat* check box (the form sends it, or not)."""
    operator(request, Right.CERTIFICATES_SUSPEND)
    form = await read_form(request)
    suspended = form.get("suspendat") == "1"
    await api(request).patch("certs", f"/v1/certificates/{quoted(request.match_info['id'])}",
                             {"suspended": suspended})
    raise redirect(request.path, ok="suspendat" if suspended else "reactivat")
