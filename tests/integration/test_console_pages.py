"""The console against the real users, keygen and certs services (their real apps on
the session's PostgreSQL and RabbitMQ), driven as a browser without JavaScript would:
pages, forms with their CSRF token, the sealed session cookie."""
from __future__ import annotations

import dataclasses
import re
import uuid

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL
from stdnum.ro import cui as stdnum_cui

from services.certs.app import create_app as certs_app
from services.certs.config import Config as CertsConfig
from services.console.app import create_app as console_app
from services.console.config import Config as ConsoleConfig
from services.keygen.app import create_app as keygen_app
from services.keygen.config import Config as KeygenConfig
from services.users.app import create_app as users_app
from services.users.config import Config as UsersConfig
from shared.auth import ALL_RIGHTS
from tests.support import infra
from tests.support.bus import tapped
from tests.support.certs_api import add_external_user, unique
from tests.support.crl_authority import CrlAuthority
from tests.support.identities import new_cui
from tests.support.ocsp_harness import Issuer
from tests.support.wait import eventually

PASSWORD = "Consola-Test-2026!"
RUN = uuid.uuid4().hex[:6]
CNAS_USER = f"cnas.{RUN}"
HOUSE_B_USER = f"operator.{RUN}"


def random_cui() -> str:
    """A valid CUI no other test uses (the same CUI twice in a house is refused)."""
    base = str(uuid.uuid4().int % 9_000_000 + 1_000_000)
    return base + stdnum_cui.calc_check_digit(base)


class Browser:
    """A cookie-keeping client that reads each page's CSRF token, as a browser would."""

    def __init__(self, base: str, address: str | None = None):
        """``address``: the browser's client address, as a proxy in front of the console
        would tell it (a new one by default, so that visitors are not one address)."""
        self.base = base
        self.address = address or f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                             headers={"X-Forwarded-For": self.address})
        self.csrf = ""

    async def get(self, path: str, **kw) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.base + path, allow_redirects=kw.pop("follow", True), **kw) as r:
            text = await r.text()
            self._remember(text)
            return r.status, text, r

    async def post(self, path: str, data: dict | aiohttp.FormData, *, csrf: bool = True,
                   follow: bool = True) -> tuple[int, str, aiohttp.ClientResponse]:
        if csrf and isinstance(data, dict):
            data = {"csrf": self.csrf, **data}
        async with self.session.post(self.base + path, data=data, allow_redirects=follow) as r:
            text = await r.text()
            self._remember(text)
            return r.status, text, r

    def _remember(self, html: str) -> None:
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        if found:
            self.csrf = found[1]

    @property
    def cookie(self) -> str:
        return self.session.cookie_jar.filter_cookies(URL(self.base))["siui_console"].value

    def set_cookie(self, value: str) -> None:
        self.session.cookie_jar.clear()
        self.session.cookie_jar.update_cookies({"siui_console": value}, response_url=URL(self.base))

    async def login(self, username: str, password: str = PASSWORD) -> tuple[int, str]:
        await self.get("/")
        status, text, _ = await self.post("/", {"username": username, "password": password})
        return status, text

    async def close(self) -> None:
        await self.session.close()


async def _server(app) -> TestServer:
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture(scope="module")
async def served(common_config, token_for):
    """users, keygen and certs as real apps, the console in front of them, and two staff
    accounts made through the users API: a CNAS admin and a house-B operator. The console
    believes the browsers' X-Forwarded-For (as behind a TLS proxy on this host), and the
    users and keygen services believe the console's."""
    behind_proxy = dataclasses.replace(common_config, trusted_proxies=frozenset({"127.0.0.1", "::1"}))
    users = await _server(users_app(UsersConfig(common=behind_proxy, port=0)))
    keygen = await _server(keygen_app(KeygenConfig(common=behind_proxy, port=0)))
    # Loopback CRLs allowed, as make up allows them: the issuer-status test serves one here.
    certs = await _server(certs_app(CertsConfig(common=common_config, port=0, crl_allow_loopback=True,
                                                crl_tick_seconds=0.2, crl_min_interval_seconds=0.5,
                                                crl_retry_seconds=0.5)))
    urls = {name: str(s.make_url("")).rstrip("/") for name, s in
            (("users", users), ("keygen", keygen), ("certs", certs))}
    # The ocsp service is not part of these tests: an address where nothing listens.
    urls["ocsp"] = "http://127.0.0.1:9"
    console = await _server(console_app(ConsoleConfig(common=behind_proxy, port=0, backends=urls)))
    bootstrap = {"Authorization": f"Bearer {token_for(cas='CNAS', username='admin', rights=ALL_RIGHTS)}"}
    async with aiohttp.ClientSession() as http:
        for username, cas, role in ((CNAS_USER, "CNAS", "national-admin"), (HOUSE_B_USER, "B", "house-operator")):
            async with http.post(urls["users"] + "/v1/users", headers=bootstrap, json={
                    "username": username, "password": PASSWORD, "cas": cas, "employee_name": f"Test {cas}",
                    "roles": [role]}) as r:
                assert r.status == 201, await r.text()
    yield str(console.make_url("")).rstrip("/"), urls
    for server in (console, certs, keygen, users):
        await server.close()


@pytest.fixture(scope="module")
def console_url(served):
    return served[0]


@pytest.fixture
async def visitor(console_url):
    b = Browser(console_url)
    yield b
    await b.close()


async def test_pages_carry_a_strict_csp_and_the_cookie_is_sealed(visitor):
    status, html, response = await visitor.get("/")
    assert status == 200 and 'name="username"' in html and 'name="password"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in html and "onclick" not in html and "style=" not in html
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # The value is sealed: no token, no JSON readable in it.
    assert "{" not in cookie.split(";")[0] and "eyJ" not in cookie


async def test_login_logout_and_the_csrf_check(visitor):
    await visitor.get("/")
    status, html, _ = await visitor.post("/", {"username": CNAS_USER, "password": PASSWORD}, csrf=False)
    assert status == 403 and "Formularul a expirat" in html  # no CSRF token: refused

    status, html, _ = await visitor.post("/", {"username": CNAS_USER, "password": "wrong password!!"})
    assert status == 401 and "Nume de utilizator sau parola gresita" in html

    status, html = await visitor.login(CNAS_USER)
    assert status == 200 and "Furnizori / Persoane juridice" in html and "Toate casele" in html
    sealed = visitor.cookie

    status, html, _ = await visitor.post("/iesire", {})
    assert status == 200 and "V-ati deconectat" in html
    status, html, response = await visitor.get("/utilizatori", follow=False)
    assert status == 303 and response.headers["Location"].startswith("/?next=")

    # The old cookie replayed after logout: the users service refuses the ended session.
    visitor.set_cookie(sealed)
    status, html, response = await visitor.get("/utilizatori", follow=False)
    assert status == 303 and response.headers["Location"].startswith("/?next=")


async def test_an_edited_cookie_is_no_session(visitor):
    await visitor.login(HOUSE_B_USER)
    sealed = visitor.cookie
    edited = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    visitor.set_cookie(edited)
    status, _, response = await visitor.get("/furnizori", follow=False)
    assert status == 303 and URL(response.headers["Location"]).query["next"] == "/furnizori"


async def test_a_strangers_wrong_passwords_lock_only_the_strangers_browser(console_url):
    username = f"lock.{uuid.uuid4().hex[:6]}"
    admin, stranger, owner = Browser(console_url), Browser(console_url), Browser(console_url)
    try:
        await admin.login(CNAS_USER)
        await admin.get("/utilizatori/nou")
        status, html, _ = await admin.post("/utilizatori/nou", {
            "username": username, "password": PASSWORD, "cas": "B", "employee_name": "De blocat",
            "roles": "house-viewer"})
        assert status == 200 and username in html, html
        pages = set()
        for _ in range(5):
            status, html = await stranger.login(username, "not the password")
            assert status == 401
            pages.add(re.search(r'id="login-error"><p>([^<]*)</p>', html)[1])
        status, html = await stranger.login(username)  # even the right password, while locked
        assert status == 401
        pages.add(re.search(r'id="login-error"><p>([^<]*)</p>', html)[1])
        # One message, the same before and during the lock, and never "blocat pana la".
        assert len(pages) == 1
        message = pages.pop()
        assert message.startswith("Nume de utilizator sau parola gresita.") and "5 parole gresite" in message
        assert "pana la" not in html
        # The owner's browser, another address: logged in.
        status, html = await owner.login(username)
        assert status == 200 and "Furnizori" in html
    finally:
        for browser in (admin, stranger, owner):
            await browser.close()


async def test_house_staff_list_and_new_user_form(visitor):
    await visitor.login(CNAS_USER)
    status, html, _ = await visitor.get(f"/utilizatori?tip=intern&q={HOUSE_B_USER}")
    assert "Numarul total: 1 (1 pagina)" in html and HOUSE_B_USER in html and "Linii/pag." in html
    # Field errors come back next to their fields, in Romanian.
    await visitor.get("/utilizatori/nou")
    status, html, _ = await visitor.post("/utilizatori/nou", {
        "username": "x", "password": "short", "cas": "B", "employee_name": "X", "roles": "house-viewer"})
    assert status == 422
    assert re.search(r'id="e-username">3-64 caractere', html)
    assert re.search(r'id="e-password">trebuie sa aiba cel putin 12 caractere', html)


async def test_a_county_operator_sees_only_its_house_and_cannot_add_issuers(visitor):
    status, html = await visitor.login(HOUSE_B_USER)
    assert "Casa: <strong>CAS-B</strong>" in html and 'name="casa"' not in html
    status, html, _ = await visitor.get("/autoritati")
    assert status == 200 and 'href="/autoritati/nou"' not in html
    status, html, _ = await visitor.post("/autoritati/nou", {"pem": "-----BEGIN CERTIFICATE-----"})
    assert status == 403 and "gestionate de CNAS" in html
    status, html, _ = await visitor.post("/casa", {"casa": "CJ", "inapoi": "/furnizori"})
    assert status == 403


async def test_provider_form_errors_are_shown_by_their_fields(visitor):
    await visitor.login(HOUSE_B_USER)
    await visitor.get("/furnizori/nou")
    status, html, _ = await visitor.post("/furnizori/nou", {
        "cas": "CJ", "name": "SC TEST SRL", "cui": "12433637", "cui_date": "31-02-2020", "print_order": "x"})
    assert status == 422
    assert re.search(r'id="e-cui_date">data trebuie scrisa zz-ll-aaaa', html)
    assert re.search(r'id="e-print_order">trebuie sa fie un numar intreg', html)
    status, html, _ = await visitor.post("/furnizori/nou", {"cas": "CJ", "name": "SC TEST SRL", "cui": "12433637",
                                                            "cui_date": "01-02-2020"})
    assert status == 422
    assert re.search(r'id="e-cui">nu este un CUI valid: cifra de control nu corespunde', html)
    assert 'value="01-02-2020"' in html  # what the clerk typed stays in the form


async def test_provider_created_and_its_key_as_pdf(visitor):
    await visitor.login(HOUSE_B_USER)
    await visitor.get("/furnizori/nou")
    status, html, response = await visitor.post("/furnizori/nou", {
        "name": "SC INTEGRARE SRL", "cui": "RO" + random_cui(), "cui_date": "05-01-2010",
        "trade_register_no": "J40/10/3456", "rep_name": "Ion Popescu", "rep_cnp": "1800101221144"})
    assert status == 200 and "Inregistrarea a fost creata" in html, html
    assert 'value="05-01-2010"' in html and 'value="RO"' in html  # RO prefix → Atribut fiscal RO
    assert "Generare parola" in html and "Resetare parola" not in html
    provider_path = response.url.path
    status, html, _ = await visitor.post(provider_path + "/cheie", {"reset": "0"})
    assert status == 200
    serial = re.search(r'<output id="serial" class="serial">([0-9A-Z-]+)</output>', html)
    assert serial and re.fullmatch(r"[0-9A-Z]{5}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", serial[1])
    assert 'download="generatePassword.pdf"' in html and "data:application/pdf;base64,JVBER" in html
    status, html, _ = await visitor.get(provider_path)
    assert "Resetare parola" in html and "Generare parola" not in html
    # A reset asks first.
    status, html, _ = await visitor.post(provider_path + "/cheie", {"reset": "1"})
    assert status == 200 and "Da, reseteaza parola" in html and "generatePassword.pdf" not in html


async def test_the_audit_trail_names_the_clerks_browser_not_the_console(visitor, served, token_for):
    """Every call the console makes for a clerk carries the browser's address, so the
    services' audit (and their per-address limits) see the clerk's machine."""
    await visitor.login(HOUSE_B_USER)
    await visitor.get("/furnizori/nou")
    status, html, response = await visitor.post("/furnizori/nou", {
        "name": "SC AUDIT SRL", "cui": random_cui(), "cui_date": "05-01-2010",
        "trade_register_no": "J40/10/3457", "rep_name": "Ion Popescu", "rep_cnp": "1800101221144"})
    assert status == 200 and "Inregistrarea a fost creata" in html, html
    provider_id = response.url.path.rstrip("/").rsplit("/", 1)[-1]
    admin = {"Authorization": f"Bearer {token_for(cas='CNAS', username='auditor', rights=ALL_RIGHTS)}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(served[1]["keygen"] + "/v1/audit", headers=admin, params={"limit": "1000"}) as r:
            assert r.status == 200, await r.text()
            mine = [e for e in (await r.json())["items"] if e["target_id"] == provider_id]
    assert [e["action"] for e in mine] == ["POST /v1/providers"]
    assert mine[0]["address"] == visitor.address


async def test_dashboard_data_is_json_and_needs_a_session(visitor):
    status, _, response = await visitor.get("/panou/date")
    assert status == 401 and response.content_type == "application/problem+json"
    await visitor.login(HOUSE_B_USER)
    status, _, response = await visitor.get("/panou/date")
    body = await response.json()
    assert status == 200 and body["house"] == "B"
    assert "ocsp" in body["unreachable"] and set(body["errors_5xx"]) >= {"users", "keygen", "certs"}
    assert any(name.startswith("users.") for name in body["queues"])


async def test_unknown_pages_and_large_uploads_are_explained(visitor):
    await visitor.login(CNAS_USER)
    status, html, response = await visitor.get("/nu-exista")
    assert status == 404 and response.content_type == "text/html" and "Pagina nu exista" in html
    form = aiohttp.FormData({"csrf": visitor.csrf})
    form.add_field("fisier", b"x" * 300_000, filename="mare.pem")
    status, html, _ = await visitor.post("/autoritati/nou", form)
    assert status == 413 and "Fisier prea mare" in html
    status, html, _ = await visitor.get("/furnizori/00000000-0000-0000-0000-000000000000")
    assert status == 404 and "Inregistrarea nu exista" in html


async def test_the_platform_endpoints(visitor, token_for, pki):
    for path in ("/healthz", "/readyz", "/openapi.json"):
        status, _, _ = await visitor.get(path)
        assert status == 200, path
    status, _, _ = await visitor.get("/metrics")
    assert status == 401  # per-house numbers: only with the metrics token
    async with visitor.session.get(visitor.base + "/metrics", headers=infra.metrics_headers(pki.data_dir)) as r:
        assert r.status == 200 and "siui_http_request_seconds" in await r.text()
    status, text, _ = await visitor.get("/openapi.json")
    assert '"openapi": "3.1.0"' in text and "/panou/date" in text
    async with visitor.session.get(visitor.base + "/v1/audit",
                                   headers={"Authorization": f"Bearer {token_for(cas='CNAS')}"}) as r:
        assert r.status == 404 and r.content_type == "application/problem+json"


async def test_a_cnas_user_switches_house(visitor):
    await visitor.login(CNAS_USER)
    status, html, _ = await visitor.get(f"/utilizatori?tip=intern&q={RUN}")
    assert f">{CNAS_USER}</a>" in html and f">{HOUSE_B_USER}</a>" in html  # every house
    status, html, _ = await visitor.post("/casa", {"casa": "B", "inapoi": "/utilizatori"})
    assert status == 200 and "Casa selectata a fost schimbata" in html
    assert '<option value="B" selected>' in html
    status, html, _ = await visitor.get(f"/utilizatori?tip=intern&q={RUN}")
    assert f">{HOUSE_B_USER}</a>" in html and f">{CNAS_USER}</a>" not in html
    status, html, _ = await visitor.get("/furnizori/nou")
    assert 'value="B" selected' in html  # new records default to the chosen house
    status, html, _ = await visitor.post("/casa", {"casa": "ZZ", "inapoi": "/utilizatori"})
    assert status == 422


async def test_both_states_and_the_issuers_freshness_are_shown(visitor, served, common_config, database_url,
                                                               token_for):
    """Autoritati emitente: CRL URLs set and a check asked from the console, the CRL's dates
    and a failure shown; Certificate utilizatori: SIUI's state beside the issuer's."""
    urls = served[1]
    await visitor.login(CNAS_USER)
    async with CrlAuthority.new(unique("Console CRL CA ")).served() as ca:
        status, _, response = await visitor.post("/autoritati/nou", {"pem": ca.authority.pem}, follow=False)
        assert status == 303, status
        page = response.headers["Location"].split("?")[0]
        issuer_id = page.rsplit("/", 1)[1]

        status, html, _ = await visitor.post(f"{page}/crl", {"crl_urls": "ftp://crl.example.ro/a.crl"})
        assert status == 422 and "http or https" in html
        status, html, _ = await visitor.post(f"{page}/crl", {"crl_urls": ca.url + "\n"})
        assert status == 200 and "Modificarile au fost salvate." in html and ca.url in html

        # A registered certificate of this authority, then revoked at the authority.
        db = await asyncpg.connect(database_url, server_settings={"search_path": "certs"})
        try:
            async with tapped(common_config.events_exchange, "certs.#") as bus:
                cui = new_cui()
                username = await add_external_user(bus, db, cui=cui)
        finally:
            await db.close()
        leaf = Issuer(ca.authority, issuer_id=issuer_id).issue(cui)
        async with aiohttp.ClientSession() as http:
            async with http.post(urls["certs"] + "/v1/certificates", json={
                    "username": username, "certificate_pem": leaf.pem},
                    headers={"Authorization": f"Bearer {token_for(cas='B', username='ana')}"}) as r:
                assert r.status == 201, await r.text()
        revoked_at = ca.revoke(leaf.serial)

        status, html, _ = await visitor.post(f"{page}/verifica", {})
        assert status == 200 and "Verificarea la emitent a fost ceruta" in html

        async def listed_revoked():
            _, html, _ = await visitor.get(f"/certificate?utilizator={username}")
            return html if "revocat</span> la" in html else None

        html = await eventually(listed_revoked, what="the certificates screen shows the issuer's revocation")
        assert "SIUI: <span class=\"badge on\">activ</span>" in html
        assert "verificat la" in html and revoked_at.strftime("%Y") in html
        _, html, _ = await visitor.get(page)
        assert "CRL din" in html and "verificat la" in html and "eroare" not in html
        assert "(inregistrata manual)" in html  # not from the Trusted List

        ca.mode = "forged"
        await visitor.post(f"{page}/verifica", {})

        async def failure_shown():
            _, html, _ = await visitor.get(page)
            return html if "signature does not verify" in html else None

        html = await eventually(failure_shown, what="the failed check shown")
        assert "badge off\">eroare" in html and "CRL din" in html  # the last good CRL's dates stay
    # A county operator sees the states but not the CNAS forms.
    await visitor.login(HOUSE_B_USER)
    _, html, _ = await visitor.get(page)
    assert "CRL din" in html and f'action="{page}/crl"' not in html
