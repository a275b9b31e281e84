"""The provider's certificate and key as the desktop loads them (PEM or PKCS#12, with the
passphrase asked for), and the TLS connection's failures sorted out, against a small
local TLS server that requires a client certificate (dev PKI)."""
from __future__ import annotations

import http.server
import json
import ssl
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from clients.desktop.tls import CredentialsError, client_context, load_p12, load_pem
from clients.desktop.transport import ServerUntrusted, TlsRejected, TlsSessions, Unreachable, post_json
from tests.support.infra import free_port


class Asker:
    def __init__(self, *answers: str):
        self.answers = list(answers)
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, name: str, retry: bool) -> str:
        self.calls.append((name, retry))
        return self.answers.pop(0)


def test_a_pem_certificate_and_clear_key_need_no_passphrase(pki):
    ask = Asker()
    credentials = load_pem(pki.demo_provider_cert, pki.demo_provider_key, ask)
    assert credentials.subject == "12433636 (SC DEMO MEDICAL SRL)"
    assert credentials.issuer == "MSANATATII CA (MINISTERUL SANATATII)"
    assert ask.calls == []


def test_an_encrypted_pem_key_asks_for_its_passphrase(pki, tmp_path):
    key = serialization.load_pem_private_key(pki.demo_provider_key.read_bytes(), None)
    encrypted = tmp_path / "key.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"s3cret")))
    ask = Asker("s3cret")
    load_pem(pki.demo_provider_cert, encrypted, ask)
    assert ask.calls == [(str(encrypted), False)]


def test_a_pkcs12_bundle_asks_again_after_a_wrong_passphrase(pki):
    ask = Asker("wrong", "demo")
    credentials = load_p12(pki.demo_provider_p12, ask)
    assert credentials.subject.startswith("12433636 ") and len(credentials.chain) == 1
    assert [retry for _, retry in ask.calls] == [False, True]


def test_three_wrong_passphrases_give_up(pki):
    with pytest.raises(CredentialsError) as failed:
        load_p12(pki.demo_provider_p12, Asker("a", "b", "c"))
    assert failed.value.key == "passphrase_wrong"


def test_a_key_that_is_not_the_certificates_is_refused_before_connecting(pki):
    with pytest.raises(CredentialsError) as failed:
        load_pem(pki.demo_provider_cert, pki.responder_key, Asker())
    assert failed.value.key == "credentials_unusable"
    assert "does not belong" in failed.value.params["detail"]


def test_a_missing_file_is_named(pki, tmp_path):
    with pytest.raises(CredentialsError) as failed:
        load_pem(tmp_path / "nope.pem", pki.demo_provider_key, Asker())
    assert "nope.pem" in failed.value.params["detail"]


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        peer = self.connection.getpeercert()
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        body = json.dumps({"client_cn": subject.get("commonName")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(pki, client_ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.tls_server_cert, pki.tls_server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Echo)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def tls_server(pki):
    """A TLS server with the dev :8443 certificate that requires a demo-issuer client cert."""
    server = _serve(pki, pki.demo_issuer_cert)
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def picky_server(pki):
    """The same, but it accepts only client certificates of the dev root (not ours)."""
    server = _serve(pki, pki.root_ca_cert)
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_presents_its_certificate_to_a_server_it_trusts(pki, tls_server):
    context = client_context(load_p12(pki.demo_provider_p12, Asker("demo")), pki.root_ca_cert)
    reply = post_json(tls_server + "/v1/online/connect", {}, context=context, timeout=5)
    assert reply.status == 200 and reply.body == {"client_cn": "12433636"}


def test_a_reconnect_resumes_the_last_tls_session_and_is_still_the_same_certificate(pki, tls_server):
    context = client_context(load_p12(pki.demo_provider_p12, Asker("demo")), pki.root_ca_cert)
    sessions = TlsSessions()
    replies = [post_json(tls_server + "/v1/online/connect", {}, context=context, timeout=5, sessions=sessions)
               for _ in range(3)]
    assert sessions.resumed == 2  # the first was a full handshake, the others resumed it
    assert all(r.status == 200 and r.body == {"client_cn": "12433636"} for r in replies)
    # Another context (another certificate chosen) is never offered the old session.
    other = client_context(load_p12(pki.demo_provider_p12, Asker("demo")), pki.root_ca_cert)
    post_json(tls_server + "/v1/online/connect", {}, context=other, timeout=5, sessions=sessions)
    assert sessions.resumed == 2


def test_a_server_outside_the_trusted_ca_is_not_trusted(pki, tls_server):
    context = client_context(load_pem(pki.demo_provider_cert, pki.demo_provider_key, Asker()),
                             pki.demo_issuer_cert)
    with pytest.raises(ServerUntrusted):
        post_json(tls_server + "/v1/online/connect", {}, context=context, timeout=5)


def test_a_server_refusing_our_certificate_is_told_apart_from_a_network_failure(pki, picky_server):
    context = client_context(load_pem(pki.demo_provider_cert, pki.demo_provider_key, Asker()),
                             pki.root_ca_cert)
    with pytest.raises(TlsRejected):
        post_json(picky_server + "/v1/online/connect", {}, context=context, timeout=5)


def test_nothing_listening_is_unreachable(pki):
    context = client_context(load_pem(pki.demo_provider_cert, pki.demo_provider_key, Asker()),
                             pki.root_ca_cert)
    with pytest.raises(Unreachable):
        post_json(f"https://127.0.0.1:{free_port()}/v1/online/connect", {}, context=context, timeout=5)


def test_an_unreadable_ca_file_is_named(pki, tmp_path):
    credentials = load_pem(pki.demo_provider_cert, pki.demo_provider_key, Asker())
    with pytest.raises(CredentialsError) as failed:
        client_context(credentials, tmp_path / "missing-ca.pem")
    assert "missing-ca.pem" in failed.value.params["detail"]
