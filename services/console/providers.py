"""Furnizori / Persoane juridice: the list, the "Persoana juridica" form, and the
activation key (Generare parola / Resetare parola) with its agreement PDF."""
from __future__ import annotations

import base64

from aiohttp import web

from shared.auth import Right

from services.console import forms, texts
from services.console.api import ApiError
from services.console.web import read_form, api, house_choice, operator, page_link, quoted, redirect, render

PER_PAGE_CHOICES = (10, 20, 50, 100)
PDF_NAME = "generatePassword.pdf"
# Where keygen says which serial the PDF carries (the key is never stored in clear, so
# the PDF answer is the only place the console can read it from).
SERIAL_HEADER = "X-License-Serial"


async def list_providers(request: web.Request) -> web.Response:
    """GET /furnizori: search and paging over the house's providers."""
    principal = operator(request, Right.PROVIDERS_READ)
    page = forms.page_number(request.query.get("pagina"))
    per_page = forms.page_number(request.query.get("linii"), 20)
    per_page = per_page if per_page in PER_PAGE_CHOICES else 20
    q = request.query.get("q", "").strip()
    body = await api(request).get("keygen", "/v1/providers", cas=house_choice(request), q=q, page=page,
                                  per_page=per_page)
    paging = forms.Paging.of(body, page, per_page)
    return render(request, "providers.html", {
        "items": body.get("items", []), "paging": paging, "q": q, "per_page_choices": PER_PAGE_CHOICES,
        "page_link": lambda **kw: page_link(request, **kw),
        "can_write": principal.can(Right.PROVIDERS_WRITE)})


def _form_context(request: web.Request, values: dict, *, provider: dict | None = None,
                  field_errors: dict | None = None, error: str | None = None) -> dict:
    principal = request["operator"]
    return {"sections": forms.provider_sections(), "values": values, "provider": provider,
            "field_errors": field_errors or {}, "error": error, "org_types": forms.ORG_TYPE_SUGGESTIONS,
            "can_write": principal.can(Right.PROVIDERS_WRITE),
            "can_issue": principal.can(Right.KEYS_ISSUE),
            "has_key": forms.has_key(provider) if provider else False,
            "fixed_house": not principal.is_national or provider is not None}


async def new_provider_form(request: web.Request) -> web.Response:
    """GET /furnizori/nou: an empty form, in the house being worked on."""
    operator(request, Right.PROVIDERS_WRITE)
    values = {f.name: "" for f in forms.PROVIDER_FORM} | {"cas": house_choice(request), "country": "ROM",
                                                           "currency": "RON"}
    return render(request, "provider.html", _form_context(request, values))


async def create_provider(request: web.Request) -> web.Response:
    """POST /furnizori/nou: create it with keygen; errors back next to the fields."""
    principal = operator(request, Right.PROVIDERS_WRITE)
    form = await read_form(request)
    values = {f.name: str(form.get(f.name, "")) for f in forms.PROVIDER_FORM}
    if not principal.is_national:
        values["cas"] = principal.cas  # a county clerk's provider is always its own house's
    body, problems = forms.provider_body(values)
    if problems:
        return render(request, "provider.html", _form_context(
            request, values, field_errors=problems, error=texts.detail_message(None, 422)), status=422)
    try:
        created = await api(request).post("keygen", "/v1/providers", body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return render(request, "provider.html", _form_context(
            request, values, field_errors=forms.form_errors(exc.errors),
            error=texts.detail_message(exc.detail, exc.status)), status=exc.status)
    raise redirect(f"/furnizori/{quoted(str(created['id']))}", ok="creat")


async def provider_detail(request: web.Request) -> web.Response:
    """GET /furnizori/{id}: the "Persoana juridica" form with the key buttons."""
    operator(request, Right.PROVIDERS_READ)
    provider = await api(request).get("keygen", f"/v1/providers/{quoted(request.match_info['id'])}")
    return render(request, "provider.html", _form_context(request, forms.provider_values(provider),
                                                          provider=provider))


async def save_provider(request: web.Request) -> web.Response:
    """POST /furnizori/{id}: "Salveaza": PATCH what changed."""
    operator(request, Right.PROVIDERS_WRITE)
    path = f"/v1/providers/{quoted(request.match_info['id'])}"
    provider = await api(request).get("keygen", path)
    form = await read_form(request)
    values = {f.name: str(form.get(f.name, "")) for f in forms.PROVIDER_FORM}
    values["cas"] = provider.get("cas", "")
    body, problems = forms.provider_body(values)
    if problems:
        return render(request, "provider.html", _form_context(
            request, values, provider=provider, field_errors=problems,
            error=texts.detail_message(None, 422)), status=422)
    changes = forms.provider_changes(provider, body)
    if changes:
        try:
            await api(request).patch("keygen", path, changes)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            return render(request, "provider.html", _form_context(
                request, values, provider=provider, field_errors=forms.form_errors(exc.errors),
                error=texts.detail_message(exc.detail, exc.status)), status=exc.status)
    raise redirect(request.path, ok="salvat")


async def issue_key(request: web.Request) -> web.Response:
    """POST /furnizori/{id}/cheie: Generare parola (reset=0) or Resetare parola (reset=1,
    after a confirmation page). One call to keygen per key: the agreement PDF, whose
    serial is shown on the answer page once and the PDF handed to the browser."""
    operator(request, Right.KEYS_ISSUE)
    provider_id = request.match_info["id"]
    form = await read_form(request)
    reset = form.get("reset") == "1"
    provider = await api(request).get("keygen", f"/v1/providers/{quoted(provider_id)}")
    if reset and form.get("confirmat") != "1":
        return render(request, "key_confirm.html", {"provider": provider})
    try:
        pdf, headers = await api(request).call(
            "POST", "keygen", f"/v1/providers/{quoted(provider_id)}/activation-key",
            body={"reset": reset}, accept="application/pdf")
    except ApiError as exc:
        if exc.status != 409:
            raise
        context = _form_context(request, forms.provider_values(provider), provider=provider,
                                error=texts.detail_message(exc.detail, exc.status))
        return render(request, "provider.html", context, status=409)
    serial = headers.get(SERIAL_HEADER)
    return render(request, "key_issued.html", {
        "provider": provider, "serial": serial, "reset": reset, "filename": PDF_NAME,
        "pdf_data": base64.b64encode(pdf).decode()})
