"""The pieces of `make test-fresh` that can be tried here: its allow-list proxy (HTTP
forwarding, CONNECT tunnels, refusals counted and never dialled) and its reading of
/proc/net addresses. The whole of it is `make test-fresh` itself."""
from __future__ import annotations

import http.client
import ipaddress
import http.server
import socket
import threading

import pytest

from deploy.fresh.__main__ import _address
from deploy.fresh.proxy import AllowListProxy, ProxyThread


@pytest.fixture
def origin():
    """A plain HTTP server on loopback that says which path it was asked for."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"you asked {self.path} of {self.headers['Host']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(origin, tmp_path):
    running = ProxyThread(AllowListProxy({"localhost"}, tmp_path / "proxy.log", ports=frozenset({origin})),
                          "127.0.0.1").start()
    yield running
    running.stop()


def ask(proxy, method: str, target: str, headers: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_an_allowed_host_is_forwarded_in_origin_form(proxy, origin):
    status, body = ask(proxy, "GET", f"http://localhost:{origin}/debian/dists/bookworm/Release?x=1")
    assert (status, body) == (200, f"you asked /debian/dists/bookworm/Release?x=1 of localhost:{origin}".encode())
    assert proxy.proxy.tally.allowed["localhost"] == 1


def test_a_tunnel_to_an_allowed_host_carries_the_bytes(proxy, origin):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    connection.set_tunnel("localhost", origin)
    try:
        connection.request("GET", "/simple/pip/")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == f"you asked /simple/pip/ of localhost:{origin}".encode()
    finally:
        connection.close()


def test_anything_else_is_refused_counted_and_never_dialled(proxy, origin):
    assert ask(proxy, "GET", "http://registry.invalid/x")[0] == 403
    assert ask(proxy, "GET", "http://localhost:1/x")[0] == 403  # an allowed host, another port
    assert ask(proxy, "CONNECT", "registry.invalid:443")[0] == 403
    assert ask(proxy, "GET", f"ftp://localhost:{origin}/")[0] == 403
    tally = proxy.proxy.tally
    assert tally.denied == {"registry.invalid:80": 1, "localhost:1": 1, "registry.invalid:443": 1,
                            f"localhost:{origin}": 1}
    assert not tally.allowed and not tally.failed  # refused before any connection


def test_the_proxy_listens_on_the_address_it_is_given_only(proxy):
    with socket.socket() as other:  # another loopback address of the same port: nothing there
        assert other.connect_ex(("127.0.0.2", proxy.port)) != 0


@pytest.mark.parametrize("hex_address, address", [
    ("0100007F", "127.0.0.1"),
    ("00000000", "0.0.0.0"),
    ("00000000000000000000000001000000", "::1"),
    ("0000000000000000FFFF00000100007F", "::ffff:127.0.0.1"),
    ("B80D0120000000000000000001000000", "2001:db8::1"),
])
def test_proc_net_addresses_are_read_in_host_byte_order(hex_address, address):
    assert _address(hex_address) == ipaddress.ip_address(address)
