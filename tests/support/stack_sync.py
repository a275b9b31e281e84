"""Synchronous calls to a running stack, for the browser tests: Playwright's sync API runs
its own event loop in the test's thread, so asyncio.run() is not available there."""
from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.stack import Stack

PASSWORD = "Operator-Casa-B-2026"  # of the staff accounts create_staff makes
SERIAL = re.compile(r"[0-9A-Z]{5}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}")  # a licence serial


def _http(url: str, *, body: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
    """One plain HTTP call: a POST of ``body`` as JSON, or a GET; (status, body)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _admin_token(stack: Stack) -> str:
    status, raw = _http(stack.url("users", "/v1/sessions"),
                        body={"username": "admin", "password": stack.admin_password})
    assert status == 201, raw
    return json.loads(raw)["token"]


def create_staff(stack: Stack, username: str, cas: str, role: str) -> None:
    """A staff account made through the users API (for tests that need one ready)."""
    status, raw = _http(stack.url("users", "/v1/users"), token=_admin_token(stack), body={
        "username": username, "password": PASSWORD, "cas": cas, "employee_name": f"Operator {cas}",
        "roles": [role]})
    assert status == 201, raw


def responder_pem(stack: Stack, tmp_path: Path) -> Path:
    status, raw = _http(stack.url("ocsp", "/v1/responder.pem"))
    assert status == 200, raw
    path = tmp_path / "responder.pem"
    path.write_bytes(raw)
    return path


def openssl_ocsp(stack: Stack, pki, responder: Path) -> str:
    """Ask the responder about the demo provider's certificate with the real OpenSSL client."""
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(pki.demo_issuer_cert), "-cert", str(pki.demo_provider_cert),
         "-url", stack.url("ocsp", "/"), "-VAfile", str(responder)],
        capture_output=True, text=True, timeout=15)
    return result.stdout + result.stderr


def as_admin(stack: Stack, service: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """One call as the national admin: a POST of ``body``, or a GET; (status, JSON body)."""
    status, raw = _http(stack.url(service, path), body=body, token=_admin_token(stack))
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {"raw": raw.decode(errors="replace")}


def openssl_ocsp_of(stack: Stack, issuer_cert: Path, cert: Path, responder: Path) -> str:
    """Ask the responder about ``cert`` with the real OpenSSL client."""
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer_cert), "-cert", str(cert), "-url", stack.url("ocsp", "/"),
         "-VAfile", str(responder)], capture_output=True, text=True, timeout=15)
    return result.stdout + result.stderr
