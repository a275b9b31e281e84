"""The national Trusted List through the console, in a real browser: CNAS's admin uploads a
signed list (ETSI TS 119 612, signed with signxml), sees the two new qualified CAs, applies
them in one click and finds them among the issuing authorities; the same list again shows
no change; a tampered copy is refused with the reason; the next list, fetched by certs from
the publisher's address (a real HTTP server), withdraws one CA, flagged not deleted; a
county operator cannot reach it."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest
from playwright.sync_api import expect

from shared.clock import utc_now
from tests.support import pki as test_pki
from tests.support.browser import Visit, shot
from tests.support.stack import isolated_stack
from tests.support.stack_sync import PASSWORD, create_staff
from tests.support.trusted_list import WITHDRAWN, Service, signed

pytestmark = pytest.mark.e2e
CAS = ("CERTSIGN QUALIFIED CA TEST", "DIGISIGN QUALIFIED CA TEST")


@pytest.fixture(scope="module")
def list_operator():
    return test_pki.certificate("Autoritatea pentru Digitalizarea Romaniei TL Signer", now=utc_now())


@pytest.fixture(scope="module")
def publisher(tmp_path_factory):
    """The list's publisher: a plain HTTP server on loopback, serving its directory."""
    root = tmp_path_factory.mktemp("publisher")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/TSL-RO.xml"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def tl_stack(pki, list_operator, publisher, tmp_path_factory):
    operator_pem = tmp_path_factory.mktemp("tl") / "tl-operator.pem"
    operator_pem.write_text(list_operator.pem)
    env = {"SIUI_CERTS_TL_OPERATOR_CERT": str(operator_pem), "SIUI_CERTS_TL_URL": publisher[1]}
    with isolated_stack(pki.data_dir, "console_tl", name="console-tl-stack", extra_env=env) as running:
        yield running


def test_cnas_imports_the_trusted_list_in_the_console(tl_stack, chromium, list_operator, publisher, tmp_path):
    services = [Service("CERTSIGN SA", "certSIGN Qualified CA", test_pki.root_ca(CAS[0], now=utc_now())),
                Service("DIGISIGN SA", "DigiSign Qualified CA", test_pki.root_ca(CAS[1], now=utc_now()))]
    document = tmp_path / "tsl-ro.xml"
    document.write_bytes(signed(services, list_operator, sequence=57))
    visit = Visit(chromium, tl_stack)
    page = visit.login("admin", tl_stack.admin_password)

    page.goto("/autoritati")
    page.get_by_role("link", name="Lista de incredere", exact=True).click()
    page.set_input_files("#f-fisier", str(document))
    page.get_by_role("button", name="Verifica lista", exact=True).click()
    expect(page.locator("#lista-citita")).to_contain_text("nr. 57, RO")
    table = page.locator("#diferente")
    expect(table.locator("tr.nou")).to_have_count(2)
    for name in CAS:
        expect(table).to_contain_text(name)
    shot(page, "lista-incredere-diferente")

    page.get_by_role("button", name="Aplica lista", exact=True).click()
    expect(page.locator("#aplicata")).to_contain_text("2 autoritati adaugate, 0 actualizate, 0 marcate ca retrase")
    shot(page, "lista-incredere-aplicata")
    page.goto("/autoritati")
    for name in CAS:
        expect(page.locator("table")).to_contain_text(name)
    expect(page.locator("table")).to_contain_text("Lista de incredere: certSIGN Qualified CA (CERTSIGN SA)")

    # The same list again: nothing to apply.
    page.goto("/autoritati/lista-incredere")
    page.set_input_files("#f-fisier", str(document))
    page.get_by_role("button", name="Verifica lista", exact=True).click()
    expect(page.locator("#diferente")).to_contain_text("Nicio schimbare fata de autoritatile inregistrate (2 neschimbate)")
    expect(page.get_by_role("button", name="Aplica lista", exact=True)).to_be_disabled()

    # A copy altered after signing is refused, and the page says why.
    tampered = tmp_path / "tsl-ro-altered.xml"
    tampered.write_bytes(document.read_bytes().replace(b"DigiSign Qualified CA</", b"Evil Qualified CA</"))
    page.goto("/autoritati/lista-incredere")
    page.set_input_files("#f-fisier", str(tampered))
    page.get_by_role("button", name="Verifica lista", exact=True).click()
    expect(page.locator(".notice.error")).to_contain_text("nu a fost acceptata")
    expect(page.locator("#e-fisier")).to_contain_text("Lista a fost refuzata: Trusted List refused: the list's signature does not verify")
    shot(page, "lista-incredere-refuzata")

    # The next list, published at the configured address: DigiSign withdrawn.
    served, url = publisher
    (served / "TSL-RO.xml").write_bytes(signed([services[0], Service("DIGISIGN SA", "DigiSign Qualified CA",
                                                                     services[1].certificate, status=WITHDRAWN)],
                                               list_operator, sequence=58))
    page.goto("/autoritati/lista-incredere")
    expect(page.locator("#lista-aplicata")).to_contain_text("nr. 57 (RO)")
    expect(page.locator("#lista-aplicata")).to_contain_text(url)
    page.get_by_role("button", name="Preia lista de la adresa configurata", exact=True).click()
    expect(page.locator("#lista-citita")).to_contain_text("nr. 58, RO")
    expect(page.locator("#diferente tr.retras")).to_contain_text(CAS[1])
    shot(page, "lista-incredere-preluata")
    page.get_by_role("button", name="Aplica lista", exact=True).click()
    expect(page.locator("#aplicata")).to_contain_text("0 autoritati adaugate, 0 actualizate, 1 marcate ca retrase")
    page.goto("/autoritati")
    expect(page.locator("tr", has_text=CAS[1])).to_contain_text("retrasa din lista")  # flagged, still there
    assert visit.csp_violations() == []
    visit.close()


def test_a_county_operator_cannot_import_the_trusted_list(tl_stack, chromium):
    create_staff(tl_stack, "operator.tl.cj", "CJ", "house-operator")
    visit = Visit(chromium, tl_stack)
    page = visit.login("operator.tl.cj", PASSWORD)
    page.goto("/autoritati")
    expect(page.get_by_role("link", name="Lista de incredere", exact=True)).to_have_count(0)
    page.goto("/autoritati/lista-incredere")
    expect(page.locator(".notice.error")).to_contain_text("gestionate de CNAS")
    visit.close()
