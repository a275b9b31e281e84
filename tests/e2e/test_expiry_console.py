"""Issue 15, parts 4 and 5, in the console in a real browser (Debian's Chromium,
headless) against the running stack: the dashboard shows house B its certificates
expiring within 30 / 15 / 7 days (CNAS and a house-B operator alike), and the provider
screen shows the licence key's history: who generated it, who reset it and when, the
old key "inlocuita" (replaced). Screenshots under test-artifacts/screenshots/."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.support.browser import Visit, shot, until
from tests.support.pki import client, demo_issuer
from tests.support.provider import fresh_cui
from tests.support.stack_sync import PASSWORD, _admin_token, _http, create_staff

pytestmark = pytest.mark.e2e
OPERATOR = "operator.expira"


def _ok(status: int, raw: bytes, *expected: int) -> dict:
    assert status in expected, raw
    return json.loads(raw) if raw else {}


def _token(stack, username: str, password: str) -> str:
    return _ok(*_http(stack.url("users", "/v1/sessions"), body={"username": username, "password": password}),
               201)["token"]


@pytest.fixture(scope="module")
def house_b(console_stack, pki):
    """A house-B provider whose key the admin generated and a B operator reset, and four
    certificates of its external user: expiring in 5, 12, 25 and 90 days."""
    stack = console_stack
    admin = _admin_token(stack)
    create_staff(stack, OPERATOR, "B", "house-operator")
    operator = _token(stack, OPERATOR, PASSWORD)
    cui = fresh_cui()
    provider = _ok(*_http(stack.url("keygen", "/v1/providers"), token=admin, body={
        "cas": "B", "cui": cui, "name": "SC EXPIRA MEDICAL SRL"}), 201)
    key_path = stack.url("keygen", f"/v1/providers/{provider['id']}/activation-key")
    first = _ok(*_http(key_path, token=admin, body={"reset": False}), 201)
    second = _ok(*_http(key_path, token=operator, body={"reset": True}), 201)
    _ok(*_http(stack.url("certs", "/v1/issuers"), token=admin,
               body={"certificate_pem": pki.demo_issuer_cert.read_text()}), 201, 409)
    issuer, now = demo_issuer(pki), datetime.now(timezone.utc)

    def register(days: int):
        pem = client(issuer, cui, now=now, days=days).pem
        status, raw = _http(stack.url("certs", "/v1/certificates"), token=admin,
                            body={"username": first["external_user"], "certificate_pem": pem})
        return None if status == 422 else _ok(status, raw, 201)  # 422 until certs hears of the user

    for days in (5, 12, 25, 90):
        until(lambda: register(days), timeout=20, what=f"the {days}-day certificate registered")
    return {"provider": provider, "first": first, "second": second}


def _counts(page, cas: str) -> dict[int, str]:
    row = page.locator(f"#expira-tabel tr[data-casa='{cas}']")
    expect(row).to_have_count(1)
    return {days: row.locator(f"td[data-zile='{days}']").inner_text().strip() for days in (30, 15, 7)}


def test_the_dashboard_shows_each_house_its_expiring_certificates(console_stack, chromium, house_b):
    admin = Visit(chromium, console_stack)
    try:
        page = admin.login("admin", console_stack.admin_password)
        page.goto("/panou")
        expect(page.locator("#expira h2")).to_have_text("Certificate care expira")
        assert _counts(page, "B") == {30: "3", 15: "2", 7: "1"}
        expect(page.locator("#expira-tabel thead")).to_contain_text("In 30 de zile")
        shot(page, "panou-certificate-care-expira")
        # Each count's list is the certificates list with the same window.
        page.get_by_role("link", name="lista pentru 7 zile").click()
        expect(page.locator("table.cards tbody tr")).to_have_count(1)
        assert admin.csp_violations() == []
    finally:
        admin.close()

    operator = Visit(chromium, console_stack)
    try:
        page = operator.login(OPERATOR, PASSWORD)
        page.goto("/panou")
        assert _counts(page, "B") == {30: "3", 15: "2", 7: "1"}
        expect(page.locator("#expira-tabel tbody tr")).to_have_count(1)  # its own house only
    finally:
        operator.close()


def test_the_provider_screen_shows_the_key_history(console_stack, chromium, house_b):
    visit = Visit(chromium, console_stack)
    try:
        page = visit.login("admin", console_stack.admin_password)
        page.goto(f"/furnizori/{house_b['provider']['id']}")
        rows = page.locator("#chei-tabel tbody tr")
        expect(rows).to_have_count(2)
        newest, oldest = rows.nth(0), rows.nth(1)
        expect(newest).to_have_attribute("data-cheie", house_b["second"]["key_id"])
        expect(newest.locator("td[data-label='Operatie']")).to_have_text("Resetare")
        expect(newest).to_contain_text(OPERATOR)
        expect(newest.locator(".badge")).to_have_text("curenta")
        expect(oldest).to_have_attribute("data-cheie", house_b["first"]["key_id"])
        expect(oldest.locator("td[data-label='Operatie']")).to_have_text("Generare")
        expect(oldest.locator("td[data-label='Emisa de']")).to_have_text("admin")
        expect(oldest.locator(".badge")).to_have_text("inlocuita")
        expect(oldest.locator("td[data-label='Stare']")).to_contain_text(f"de {OPERATOR}")
        html = page.content()
        for key in (house_b["first"], house_b["second"]):
            assert key["license_serial"] not in html  # the history never shows a serial
        page.locator("#chei").scroll_into_view_if_needed()
        shot(page, "furnizor-istoric-chei")
        assert visit.csp_violations() == []
    finally:
        visit.close()
