"""A real nginx (Debian's /usr/sbin/nginx) for tests: deploy/nginx's own configuration,
pointed at a test stack, with a TLS certificate from a test CA, on free loopback ports,
with its pid, logs and temporary files in a directory of its own; stopped afterwards.

Only addresses and paths change (``proxied_config``): each server's ``listen`` gets a free
port on 127.0.0.1 (its IPv6 twin is dropped: the test talks IPv4 loopback), each upstream
the stack's port, and the user, pid, log, temporary and certificate paths the test's
own. Every directive, limit, timeout and header stays the deployed one, and
``proxied_config`` fails if the deployed file no longer has exactly what it substitutes,
so the two cannot drift apart.
"""
from __future__ import annotations

import contextlib
import getpass
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.infra import free_port
from tests.support.stack import ARTIFACTS, HTTP_SERVICES, Stack

ROOT = Path(__file__).resolve().parents[2]
NGINX_DIR = ROOT / "deploy" / "nginx"
NGINX = "/usr/sbin/nginx"
DOMAIN = "siui.example"
# The services' default ports, as deploy/nginx/nginx.conf's upstreams name them.
DEFAULT_PORTS = {"console": 8100, "keygen": 8101, "users": 8102, "certs": 8103, "ocsp": 8104}
# Every server of the deployed file, by (port, server_name): the test gives each a port.
SERVERS = {
    (80, " ".join(f"{s}.{DOMAIN}" for s in HTTP_SERVICES)): "http",
    (80, "_"): "http-default",
    (443, "_"): "https-default",
    **{(443, f"{s}.{DOMAIN}"): s for s in HTTP_SERVICES},
}
# Deployed line -> the test's, each present exactly once ({work}: nginx's directory).
PATHS = {
    "user www-data;": "user {user};",
    "pid /run/nginx.pid;": "pid {work}/nginx.pid;",
    "error_log /var/log/nginx/error.log warn;": "error_log {work}/error.log warn;",
    "access_log /var/log/nginx/siui-access.log siui buffer=64k flush=5s;":
        "access_log {work}/access.log siui buffer=64k flush=5s;",
    "client_body_temp_path /var/lib/nginx/body;": "client_body_temp_path {work}/body;",
    "proxy_temp_path /var/lib/nginx/proxy;": "proxy_temp_path {work}/proxy;",
    "fastcgi_temp_path /var/lib/nginx/fastcgi;": "fastcgi_temp_path {work}/fastcgi;",
    "uwsgi_temp_path /var/lib/nginx/uwsgi;": "uwsgi_temp_path {work}/uwsgi;",
    "scgi_temp_path /var/lib/nginx/scgi;": "scgi_temp_path {work}/scgi;",
    "ssl_certificate /etc/nginx/siui/tls/fullchain.pem;": "ssl_certificate {work}/tls/fullchain.pem;",
    "ssl_certificate_key /etc/nginx/siui/tls/privkey.pem;": "ssl_certificate_key {work}/tls/privkey.pem;",
    "ssl_trusted_certificate /etc/nginx/siui/tls/chain.pem;": "ssl_trusted_certificate {work}/tls/chain.pem;",
}
LISTEN = re.compile(r"^(\s*)listen (\[::\]:)?(80|443)\b([^;]*);\n", re.M)


def _blocks(text: str, keyword: str) -> list[tuple[int, int]]:
    """Spans of the ``keyword { ... }`` blocks in an nginx configuration (quotes and
    comments read as nginx reads them, so a brace in a string is no block)."""
    spans, stack, quote, i, statement = [], [], None, 0, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            i = text.index("\n", i)
            statement = i + 1
        elif char == "{":
            stack.append(((text[statement:i].split() or [""])[0], statement))
            statement = i + 1
        elif char == "}":
            name, start = stack.pop()
            if name == keyword:
                spans.append((start, i + 1))
            statement = i + 1
        elif char == ";":
            statement = i + 1
        i += 1
    assert not stack and quote is None, "unbalanced nginx configuration"
    return spans


def proxied_config(text: str, *, listen_ports: dict[str, int], upstream_ports: dict[str, int],
                work: Path) -> str:
    """The deployed nginx.conf as the test runs it (see the module docstring)."""
    seen = {}
    out, last = [], 0
    for start, end in _blocks(text, "server"):
        block = text[start:end]
        (name,) = re.findall(r"^\s*server_name ([^;]+);", block, re.M)
        listens = LISTEN.findall(block)
        ports = {int(port) for _, _, port, _ in listens}
        assert len(ports) == 1 and len(listens) == 2 and {v6 for _, v6, _, _ in listens} == {"", "[::]:"}, \
            f"server {name}: expected one IPv4 and one IPv6 listen on one port, found {listens}"
        key = SERVERS[(ports.pop(), name)]
        seen[key] = name

        def listen(match: re.Match, key=key) -> str:
            indent, v6, _, rest = match.groups()
            return "" if v6 else f"{indent}listen 127.0.0.1:{listen_ports[key]}{rest};\n"

        out += [text[last:start], LISTEN.sub(listen, block)]
        last = end
    out.append(text[last:])
    config = "".join(out)
    assert sorted(seen) == sorted(SERVERS.values()), f"servers in deploy/nginx/nginx.conf: {seen}"
    for service, port in DEFAULT_PORTS.items():
        line = f"server 127.0.0.1:{port};"
        assert config.count(line) == 1, f"upstream {service}: {line!r} expected once"
        config = config.replace(line, f"server 127.0.0.1:{upstream_ports[service]};")
    for deployed, ours in PATHS.items():
        assert config.count(deployed) == 1, f"{deployed!r} expected once in deploy/nginx/nginx.conf"
        config = config.replace(deployed, ours.format(work=work, user=getpass.getuser()))
    return config


@dataclass(frozen=True)
class ProxyTls:
    """A test CA and the proxy's certificate from it (every server name, and 127.0.0.1)."""

    ca: Path
    fullchain: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls(directory: Path) -> ProxyTls:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SIUI nginx test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    names = [x509.DNSName(f"{s}.{DOMAIN}") for s in HTTP_SERVICES]
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"console.{DOMAIN}")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(
                [*names, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    tls = ProxyTls(ca=directory / "chain.pem", fullchain=directory / "fullchain.pem", key=directory / "privkey.pem")
    tls.ca.write_bytes(ca.public_bytes(pem))
    tls.fullchain.write_bytes(leaf.public_bytes(pem))
    tls.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    tls.key.chmod(0o600)
    return tls


@dataclass
class Nginx:
    ports: dict[str, int]    # SERVERS' keys -> the port each listens on (127.0.0.1)
    tls: ProxyTls
    work: Path
    process: subprocess.Popen
    log_path: Path

    def url(self, service: str, path: str = "") -> str:
        return f"https://127.0.0.1:{self.ports[service]}{path}"

    def stop(self, timeout: float = 10) -> int:
        """Fast shutdown (SIGTERM: open streams are cut); the whole process group killed if
        the master does not exit in time, so no worker is left behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


@contextlib.contextmanager
def running_nginx(stack: Stack, work: Path, timeout: float = 15):
    """deploy/nginx in front of ``stack`` (see the module docstring), until the block ends."""
    assert Path(NGINX).exists(), "nginx not found: deploy/setup.sh installs Debian's nginx package"
    work.mkdir(parents=True, exist_ok=True)
    tls = make_tls(work / "tls")
    ports = {key: free_port() for key in SERVERS.values()}
    config = work / "nginx.conf"
    config.write_text(proxied_config((NGINX_DIR / "nginx.conf").read_text(), listen_ports=ports,
                                  upstream_ports=stack.ports, work=work))
    shutil.copy(NGINX_DIR / "siui-problems.conf", work / "siui-problems.conf")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"nginx-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        # -e: errors before the configuration is read go there too, not to /var/log/nginx.
        process = subprocess.Popen([NGINX, "-p", str(work), "-c", str(config), "-e", str(work / "error.log"),
                                    "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    nginx = Nginx(ports=ports, tls=tls, work=work, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while not all(_accepts(port) for port in ports.values()):
            assert process.poll() is None, \
                f"nginx exited with {process.returncode}: {(work / 'error.log').read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"nginx not listening within {timeout}s; see {work}/error.log"
            time.sleep(0.05)
        yield nginx
    finally:
        code = nginx.stop()
        for name in ("error.log", "access.log"):  # kept with the other artifacts
            if (work / name).exists():
                with open(log_path, "ab") as log:
                    log.write(f"--- {name}\n".encode() + (work / name).read_bytes())
    assert code == 0, f"nginx did not stop cleanly ({code}); see {log_path}"
