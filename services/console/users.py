"""Lista utilizatorilor: the house's internal users (staff, with roles and rights) and
external users (providers' accounts, made from the activation key, without roles)."""
from __future__ import annotations

from aiohttp import web

from shared.auth import Right
from shared.houses import HOUSES

from services.console import forms, texts
from services.console.api import ApiError
from services.console.web import read_form, api, house_choice, operator, page_link, quoted, redirect, render

TYPES = {"toate": "all", "intern": "internal", "extern": "external"}
PER_PAGE_CHOICES = (10, 20, 50, 100)
USER_FIELDS = ("username", "password", "cas", "employee_code", "employee_name")


async def list_users(request: web.Request) -> web.Response:
    """GET /utilizatori: Tip (Toate/Intern/Extern), search, "Numarul total", pages, Linii/pag."""
    principal = operator(request, Right.USERS_READ)
    kind = request.query.get("tip", "toate")
    kind = kind if kind in TYPES else "toate"
    page = forms.page_number(request.query.get("pagina"))
    per_page = forms.page_number(request.query.get("linii"), 20)
    per_page = per_page if per_page in PER_PAGE_CHOICES else 20
    q = request.query.get("q", "").strip()[:100]
    body = await api(request).get("users", "/v1/users", type=TYPES[kind], q=q, page=page, per_page=per_page,
                                  cas=house_choice(request))
    return render(request, "users.html", {
        "items": body.get("items", []), "paging": forms.Paging.of(body, page, per_page), "q": q, "tip": kind,
        "per_page_choices": PER_PAGE_CHOICES, "page_link": lambda **kw: page_link(request, **kw),
        "can_write": principal.can(Right.USERS_WRITE)})


async def _roles(request: web.Request) -> list[dict]:
    return (await api(request).get("users", "/v1/roles")).get("items", [])


def _house_choices(request: web.Request) -> list:
    principal = request["operator"]
    if principal.is_national:
        return [("CNAS", "CNAS · Casa Nationala"),
                *((h.code, f"{h.short} · {h.county or h.code}") for h in HOUSES)]
    return [(principal.cas, principal.cas)]


async def new_user_form(request: web.Request) -> web.Response:
    """GET /utilizatori/nou: a staff account (external users come from the key)."""
    principal = operator(request, Right.USERS_WRITE)
    values = dict.fromkeys(USER_FIELDS, "") | {"cas": house_choice(request) or principal.cas}
    return render(request, "user_new.html", {"values": values, "roles": await _roles(request),
                                             "chosen": [], "houses_for_user": _house_choices(request),
                                             "field_errors": {}})


async def create_user(request: web.Request) -> web.Response:
    """POST /utilizatori/nou: create the staff account with its roles."""
    principal = operator(request, Right.USERS_WRITE)
    form = await read_form(request)
    values = {name: str(form.get(name, "")).strip() for name in USER_FIELDS}
    values["password"] = str(form.get("password", ""))
    if not principal.is_national:
        values["cas"] = principal.cas
    chosen = [str(r) for r in form.getall("roles", [])]
    body = {**{k: v for k, v in values.items() if v}, "roles": chosen}
    try:
        await api(request).post("users", "/v1/users", body)
    except ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        return render(request, "user_new.html", {
            "values": values | {"password": ""}, "roles": await _roles(request), "chosen": chosen,
            "houses_for_user": _house_choices(request), "field_errors": texts.field_errors(exc.errors),
            "error": texts.detail_message(exc.detail, exc.status)}, status=exc.status)
    raise redirect(f"/utilizatori/{quoted(values['username'].lower())}", ok="creat")


async def user_detail(request: web.Request, *, error: str | None = None, field_errors: dict | None = None,
                      status: int = 200) -> web.Response:
    """GET /utilizatori/{username}: staff with the Roluri / Drepturi tabs; an external
    user with its provider and key history, and no tabs (no roles for them)."""
    principal = operator(request, Right.USERS_READ)
    username = request.match_info["username"]
    user = await api(request).get("users", f"/v1/users/{quoted(username)}")
    roles = await _roles(request) if user.get("type") == "internal" else []
    return render(request, "user.html", {
        "user": user, "roles": roles, "chosen": user.get("roles", []),
        "can_write": principal.can(Right.USERS_WRITE) and username != principal.username,
        "error": error, "field_errors": field_errors or {}}, status=status)


async def save_user(request: web.Request) -> web.Response:
    """POST /utilizatori/{username}: "Salveaza" the staff fields, password, enabled, unlock."""
    operator(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    form = await read_form(request)
    body: dict = {"employee_code": str(form.get("employee_code", "")).strip(),
                  "employee_name": str(form.get("employee_name", "")).strip(),
                  "enabled": form.get("enabled") == "1"}
    if form.get("password"):
        body["password"] = str(form["password"])
    if form.get("unlock") == "1":
        body["unlock"] = True
    return await _change_user(request, username, api(request).patch("users", f"/v1/users/{quoted(username)}", body))


async def save_roles(request: web.Request) -> web.Response:
    """POST /utilizatori/{username}/roluri: replace the user's roles."""
    operator(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    form = await read_form(request)
    roles = {"roles": [str(r) for r in form.getall("roles", [])]}
    return await _change_user(request, username,
                              api(request).put("users", f"/v1/users/{quoted(username)}/roles", roles))


async def _change_user(request: web.Request, username: str, call) -> web.Response:
    """Await the users API ``call``; back to the user's page with "salvat", or with the
    service's refusal shown (field errors next to their fields)."""
    try:
        await call
    except ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        return await user_detail(request, error=texts.detail_message(exc.detail, exc.status),
                                 field_errors=texts.field_errors(exc.errors), status=exc.status)
    raise redirect(f"/utilizatori/{quoted(username)}", ok="salvat")


async def delete_user(request: web.Request) -> web.Response:
    """POST /utilizatori/{username}/sterge: "Sterge", after a confirmation page."""
    operator(request, Right.USERS_WRITE)
    username = request.match_info["username"]
    form = await read_form(request)
    if form.get("confirmat") != "1":
        user = await api(request).get("users", f"/v1/users/{quoted(username)}")
        return render(request, "user_delete.html", {"user": user})
    try:
        await api(request).delete("users", f"/v1/users/{quoted(username)}")
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await user_detail(request, error=texts.detail_message(exc.detail, exc.status), status=409)
    raise redirect("/utilizatori", ok="sters")
