"""Part A of the seed, through the console, in a real browser (Debian's Chromium, headless):
the CNAS admin registers the issuing authority and creates a house-B operator; the
operator creates the provider, generates its key (the PDF downloads, the serial shows),
finds 12433636_CAS-B in the users list by the provider code, adds the certificate,
suspends it and watches the OCSP answer change in the live log. Then: a county operator
cannot add issuing authorities; the dashboard draws; the screens fit a phone."""
from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from tests.support.browser import Visit, shot, until
from tests.support.stack_sync import PASSWORD, SERIAL, create_staff, openssl_ocsp, responder_pem

pytestmark = pytest.mark.e2e
CUI = "12433636"
EXTERNAL_USER = f"{CUI}_CAS-B"
OPERATOR = "operator.b"


@pytest.fixture(scope="module")
def admin(console_stack, chromium):
    visit = Visit(chromium, console_stack)
    visit.login("admin", console_stack.admin_password)
    yield visit
    visit.close()


def test_part_a_through_the_console(console_stack, chromium, admin, pki, tmp_path):
    stack = console_stack
    # -- CNAS: the issuing authority, then the house-B operator ---------------------------
    page = admin.page
    page.goto("/autoritati")
    page.get_by_role("link", name="Nou", exact=True).click()
    page.set_input_files("#f-fisier", str(pki.demo_issuer_cert))
    shot(page, "autoritati-nou")
    page.get_by_role("button", name="Salveaza", exact=True).click()
    expect(page.locator(".notice.ok")).to_contain_text("Inregistrarea a fost creata")
    expect(page.locator("dd.dn")).to_contain_text("CN=MSANATATII CA")
    shot(page, "autoritate-detaliu")

    page.goto("/utilizatori")
    page.get_by_role("link", name="Nou", exact=True).click()
    page.fill("#f-username", OPERATOR)
    page.fill("#f-password", PASSWORD)
    page.select_option("#f-cas", "B")
    page.fill("#f-employee_code", "B-0042")
    page.fill("#f-employee_name", "Maria Ionescu")
    page.check("input[name=roles][value=house-operator]")
    shot(page, "utilizator-nou")
    page.get_by_role("button", name="Salveaza", exact=True).click()
    expect(page.locator("h1")).to_contain_text(OPERATOR)
    page.click("role=tab[name='Drepturi']")
    expect(page.locator("#drepturi")).to_contain_text("keys:issue")
    expect(page.locator("#drepturi")).not_to_contain_text("issuers:write")
    shot(page, "utilizator-drepturi")

    # -- the house-B operator: the provider ----------------------------------------------
    operator = Visit(chromium, stack)
    page = operator.login(OPERATOR, PASSWORD)
    expect(page.locator(".house-fixed")).to_have_text("Casa: CAS-B")
    expect(page.locator("select[name=casa]")).to_have_count(0)
    shot(page, "furnizori-lista-goala")
    page.get_by_role("link", name="Nou", exact=True).click()
    for field, value in {"name": "SC DEMO MEDICAL SRL", "cui": "12433637", "cui_date": "15-03-2005",
                         "org_type": "SRL", "trade_register_no": "J40/10/3456", "registered_on": "20-03-2005",
                         "locality": "17913 Bucuresti", "valid_from": "01-01-2026",
                         "rep_name": "Ion Popescu", "rep_cnp": "1800101221144"}.items():
        page.fill(f"#f-{field}", value)
    page.get_by_role("button", name="Salveaza", exact=True).click()
    # A mistyped CUI: said next to the field, in Romanian; what was typed stays.
    expect(page.locator("#e-cui")).to_have_text("nu este un CUI valid: cifra de control nu corespunde")
    expect(page.locator("#f-locality")).to_have_value("17913 Bucuresti")
    shot(page, "furnizor-eroare-cui")
    page.fill("#f-cui", CUI)
    page.get_by_role("button", name="Salveaza", exact=True).click()
    expect(page.locator(".notice.ok")).to_contain_text("Inregistrarea a fost creata")
    expect(page.locator("#f-cui_date")).to_have_value("15-03-2005")
    expect(page.get_by_role("button", name="Generare parola", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Resetare parola", exact=True)).to_have_count(0)
    shot(page, "furnizor-detaliu")
    provider_url = page.url

    # -- Generare parola: the agreement downloads, the serial shows once ------------------
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Generare parola", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "generatePassword.pdf"
    pdf = tmp_path / "generatePassword.pdf"
    download.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000
    serial = page.locator("#serial").inner_text()
    assert SERIAL.fullmatch(serial), serial
    shot(page, "furnizor-serie-licenta")
    page.goto(provider_url)
    expect(page.get_by_role("button", name="Resetare parola", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Generare parola", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Resetare parola", exact=True).click()  # a reset asks first
    expect(page.locator(".notice.warn")).to_contain_text("Cheia actuala nu va mai functiona")
    shot(page, "furnizor-confirmare-resetare")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Da, reseteaza parola", exact=True).click()
    assert download_info.value.suggested_filename == "generatePassword.pdf"
    expect(page.locator("h1")).to_have_text("Parola a fost resetata")
    new_serial = page.locator("#serial").inner_text()
    assert SERIAL.fullmatch(new_serial) and new_serial != serial

    # -- Lista utilizatorilor: the external user, found by the provider code --------------
    page.goto("/utilizatori")
    page.click("label:has-text('Extern')")  # the Tip filter submits itself
    page.wait_for_url(re.compile(r".*tip=extern"))
    page.fill("#q", CUI)
    with page.expect_navigation():
        page.get_by_role("button", name="Cauta", exact=True).click()
    assert f"q={CUI}" in page.url

    def listed():
        page.reload()  # the external user is made from KeyIssued, a moment later
        return "Numarul total: 1 (1 pagina)" in page.locator(".pager .total").inner_text()

    until(listed, what="external user listed (made from KeyIssued)")
    expect(page.locator("tbody")).to_contain_text(EXTERNAL_USER)
    expect(page.locator("tbody")).to_contain_text("Extern")
    shot(page, "utilizatori-extern")
    page.get_by_role("link", name=EXTERNAL_USER, exact=True).click()
    expect(page.locator("role=tab")).to_have_count(0)  # no roles or rights for external users
    expect(page.locator("main")).to_contain_text("Generare parola")  # the key history

    # -- Certificate utilizatori: upload the certificate, see what was read, save ---------
    page.get_by_role("link", name="Adauga certificat", exact=True).click()
    page.set_input_files("#f-fisier", str(pki.demo_provider_cert))
    page.get_by_role("button", name="Citeste certificatul", exact=True).click()
    expect(page.locator("#citit")).to_contain_text("MSANATATII CA")
    expect(page.locator("#f-username")).to_have_value(EXTERNAL_USER)
    shot(page, "certificat-citit")

    def saved():
        with page.expect_navigation():
            page.get_by_role("button", name="Salveaza", exact=True).click()
        return "/certificate/nou" not in page.url  # else: certs has not heard of the user yet

    until(saved, what="certificate registered (certs knows the external user)")
    expect(page.locator("#suii-user")).to_have_text(EXTERNAL_USER)
    expect(page.locator("#suii-schema")).to_have_text("SIUIB")
    expect(page.locator("#suii-org")).to_have_text("CAS-B")
    expect(page.locator("#suspendat")).not_to_be_checked()
    shot(page, "certificat-detaliu")
    certificate_url = page.url

    # -- Log OCSP, live: good; paused; suspended; resumed without losing the entry --------
    log = operator.new_page()
    log.goto("/log-ocsp")
    expect(log.locator("#live-status")).to_have_text("In timp real")
    responder = responder_pem(stack, tmp_path)

    def ocsp_says(word: str):
        out = openssl_ocsp(stack, pki, responder)
        assert "Response verify OK" in out, out
        return f": {word}" in out

    until(lambda: ocsp_says("good"), what="OCSP good")
    expect(log.locator("#log-body tr[data-status=good]").first).to_be_visible()
    expect(log.locator("#log-body tr[data-status=good]").first).to_contain_text(EXTERNAL_USER)
    log.click("#pause")
    expect(log.locator("#pause")).to_have_text("Continua")

    page.goto(certificate_url)
    page.check("#suspendat")  # the box submits itself
    expect(page.locator(".notice.ok")).to_have_text("Certificatul a fost suspendat.")
    expect(page.locator("#stare")).to_have_text("Suspendat")
    until(lambda: ocsp_says("revoked"), timeout=5, what="OCSP revoked")
    # The entry arrived while paused: kept in the buffer, not drawn.
    expect(log.locator("#buffered")).to_have_text(re.compile(r"^[1-9]\d* intrari noi in asteptare$"))
    expect(log.locator("#log-body tr[data-status=revoked]")).to_have_count(0)  # paused: not drawn
    shot(log, "log-ocsp-pauza")
    log.click("#pause")
    expect(log.locator("#log-body tr[data-status=revoked]").first).to_contain_text(EXTERNAL_USER)
    expect(log.locator("#log-body tr[data-status=good]").first).to_be_visible()  # nothing lost
    shot(log, "log-ocsp")
    # A reader that comes back with Last-Event-ID gets what it missed, ids included.
    replay = log.evaluate("""async () => {
        const stop = new AbortController();
        const answer = await fetch("/log-ocsp/stream", {headers: {"Last-Event-ID": "0"}, signal: stop.signal});
        const reader = answer.body.getReader();
        let text = "";
        while (!text.includes('"revoked"')) {
            const {value, done} = await reader.read();
            if (done) break;
            text += new TextDecoder().decode(value);
        }
        stop.abort();
        return text;
    }""")
    assert re.search(r"^id: \d+", replay, re.M) and '"good"' in replay and '"revoked"' in replay, replay
    # A house viewer watches the same log with the people masked, and cannot look one up.
    create_staff(stack, "viewer.b", "B", "house-viewer")
    viewer = Visit(chromium, stack)
    watch = viewer.login("viewer.b", PASSWORD)
    watch.goto("/log-ocsp")
    expect(watch.locator("#live-status")).to_have_text("In timp real")
    expect(watch.locator("#masked-note")).to_be_visible()
    expect(watch.locator("#f-utilizator")).to_have_count(0)
    until(lambda: ocsp_says("revoked"), what="OCSP revoked again")
    row = watch.locator("#log-body tr[data-status=revoked]").first
    expect(row).to_contain_text("12****36_CAS-B")
    expect(row).not_to_contain_text(EXTERNAL_USER)
    expect(row).to_contain_text(re.compile(r"\d+\.\d+\.\d+\.0/24"))
    shot(watch, "log-ocsp-mascat")
    assert not viewer.csp_violations(), viewer.problems
    viewer.close()
    page.goto("/certificate?suspendat=da")
    expect(page.locator("tbody")).to_contain_text(EXTERNAL_USER)
    shot(page, "certificate-suspendate")

    assert not admin.csp_violations() and not operator.csp_violations(), admin.problems + operator.problems
    operator.close()


def test_a_county_operator_cannot_add_issuing_authorities(console_stack, chromium):
    create_staff(console_stack, "operator.cj", "CJ", "house-operator")
    visit = Visit(chromium, console_stack)
    page = visit.login("operator.cj", PASSWORD)
    page.goto("/autoritati")
    expect(page.locator("h1")).to_have_text("Autoritati emitente")
    expect(page.get_by_role("link", name="Nou", exact=True)).to_have_count(0)
    shot(page, "autoritati-judet")
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post("/autoritati/nou", form={"csrf": csrf, "pem": "x"}, max_redirects=0)
    assert refused.status == 403 and "gestionate de CNAS" in refused.text()
    page.goto("/autoritati/nou")
    expect(page.locator(".notice.error")).to_contain_text("gestionate de CNAS")
    visit.close()


def test_the_dashboard_draws_live_charts(console_stack, admin, pki, tmp_path):
    page = admin.page
    page.goto("/panou")
    expect(page.locator("#live-status")).to_have_text("In timp real", timeout=10_000)
    expect(page.locator("#panou canvas")).to_have_count(5)
    until(lambda: page.locator("#k-ocsp").inner_text() != "—", what="a rate computed")
    # Some OCSP traffic while the dashboard watches: the answers appear by status and house.
    responder = responder_pem(console_stack, tmp_path)
    for _ in range(6):
        openssl_ocsp(console_stack, pki, responder)
        page.wait_for_timeout(400)  # spread over several 2-second samples, for the picture
    traffic_done = time.time()
    expect(page.locator("#c-status .u-legend")).to_contain_text(re.compile("good|revoked"))
    expect(page.locator("#c-house .u-legend")).to_contain_text("B")
    # The last sample drawn (its JSON under "Ultima citire") was read after the traffic.
    until(lambda: json.loads(page.locator("#raw").text_content() or '{"at": 0}')["at"] > traffic_done,
          what="a sample read after the traffic")
    shot(page, "panou-operational")


def test_the_screens_fit_a_phone(console_stack, chromium):
    visit = Visit(chromium, console_stack, phone=True)
    page = visit.page
    page.goto("/")
    shot(page, "telefon-autentificare")
    visit.login("admin", console_stack.admin_password)
    for path, name in (("/furnizori", "telefon-furnizori"), ("/utilizatori?tip=extern", "telefon-utilizatori"),
                       ("/certificate", "telefon-certificate"), ("/log-ocsp", "telefon-log-ocsp")):
        page.goto(path)
        # Nothing wider than the screen: wide tables scroll inside their own box.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        shot(page, name)
    page.goto("/furnizori")
    page.get_by_role("link", name="Modifica", exact=True).click()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "telefon-furnizor")
    visit.close()


def test_keyboard_only_login(console_stack, chromium):
    create_staff(console_stack, "operator.tastatura", "B", "house-viewer")
    visit = Visit(chromium, console_stack)
    page = visit.page
    page.goto("/")
    # The user name field takes the focus on load (autofocus); wait for it, under load too.
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
    page.keyboard.type("operator.tastatura")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/furnizori$"))
    visit.close()
