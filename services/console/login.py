"""Autentificare: logging in and out, and the house a CNAS user is looking at."""
from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from shared import errors
from shared.auth import VERIFIER
from shared.houses import COUNTY_HOUSE_CODES

from services.console import session as sessions
from services.console import texts
from services.console.api import ApiError
from services.console.web import CONFIG, api, operator, read_form, redirect, render, save_session

HOME = "/furnizori"


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this console only (never another site)."""
    if not target:
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    return target if target != "/" else HOME


async def login_page(request: web.Request) -> web.Response:
    """GET /: the login form (a logged-in operator goes straight on)."""
    if request.get("operator") is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    message = None
    if request.get("expired") or request.query.get("next"):
        message = "Sesiunea a expirat sau nu sunteti autentificat; autentificati-va."
    return render(request, "login.html", {"next": request.query.get("next", ""), "error": message,
                                          "username": ""})


async def login(request: web.Request) -> web.Response:
    """POST /: check the credentials with the users service and open the session."""
    form = await read_form(request)
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    context = {"next": form.get("next", ""), "username": username}
    if not username or not password:
        missing = {name: "este obligatoriu" for name, value in (("username", username), ("password", password))
                   if not value}
        return render(request, "login.html", {**context, "field_errors": missing,
                                              "error": "Completati numele de utilizator si parola."}, status=422)
    try:
        result = await api(request).post("users", "/v1/sessions",
                                                  {"username": username, "password": password})
    except ApiError as exc:
        # One message for an unknown name, a wrong password and a lock of the account from
        # this address (the service does not say which); 429/503 say when to try again.
        message = texts.detail_message(exc.detail, exc.status)
        status = exc.status if exc.status in (401, 422, 429) else 503
        return render(request, "login.html", {**context, "error": message,
                                              "field_errors": texts.field_errors(exc.errors)}, status=status)
    token = result["token"]
    try:
        principal = request.app[VERIFIER].verify(token)
    except errors.Unauthorized:
        return render(request, "login.html", {**context, "error": texts.detail_message(None, 503)}, status=503)
    user = result.get("user") or {}
    save_session(request, sessions.new_login(token, user.get("employee_name") or principal.username))
    raise web.HTTPSeeOther(target)


async def logout(request: web.Request) -> web.Response:
    """POST /iesire: end the session in the users service (so every service refuses the
    token from now on) and forget it here."""
    if request.get("operator") is not None:
        try:
            await api(request).delete("users", "/v1/sessions/current")
        except ApiError as exc:
            if exc.status != 401:  # already ended is what we wanted
                raise
    save_session(request, sessions.Session())
    raise redirect("/", ok="iesire")


async def switch_house(request: web.Request) -> web.Response:
    """POST /casa: a CNAS user chooses the house the listings show ("" for all)."""
    principal = operator(request)
    form = await read_form(request)
    back = safe_next(str(form.get("inapoi", "")))
    if not principal.is_national:
        raise ApiError(403, "only CNAS users choose a house")
    house = str(form.get("casa", "")).strip().upper()
    if house and house not in COUNTY_HOUSE_CODES:
        raise ApiError(422, "is not a house code", errors={"casa": "is not a house code"})
    save_session(request, request["session"].with_house(house))
    raise redirect(back.split("?", 1)[0], ok="casa")
