"""What the certs integration tests share (no tests here): certificates made by the
real ``openssl`` CLI, the certs app on the session's PostgreSQL and RabbitMQ, external
users fed as the users service would feed them, and a tap on the bus for certs.# events.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from asn1crypto import ocsp as asn1_ocsp

from services.certs.app import create_app
from services.certs.config import Config
from shared.clock import utc_now
from shared.events import Envelope, EventData, ExternalUserCreated, new_envelope
from tests.support import infra
from tests.support.wait import eventually

SEED_DN = "C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"
SEED_SUBJ = "/C=RO/ST=ROMANIA/L=BUCURESTI/O=MINISTERUL SANATATII/CN=MSANATATII CA"
USER_EXTENSIONS = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=clientAuth\n")


@dataclass(frozen=True)
class Made:
    """A certificate openssl made: its files and PEM text."""

    cert: Path
    key: Path

    @property
    def pem(self) -> str:
        return self.cert.read_text()

    def der(self) -> bytes:
        return openssl("x509", "-in", self.cert, "-outform", "DER", text=False)


def openssl(*args, text: bool = True, stdin: bytes | None = None):
    """Run the openssl CLI; its stdout, or the test fails with its stderr."""
    done = subprocess.run(["openssl", *map(str, args)], input=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout.decode() if text else done.stdout


def _newkey(kind: str) -> list[str]:
    return ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]


class OpenSsl:
    """Makes CA and user certificates with the openssl CLI under one directory."""

    def __init__(self, root: Path):
        self.root = root
        (root / "user.ext").write_text(USER_EXTENSIONS)

    def _paths(self) -> tuple[Path, Path]:
        name = secrets.token_hex(6)
        return self.root / f"{name}.pem", self.root / f"{name}.key"

    def ca(self, subj: str, *, key: str = "ec", days: int = 3650, ca: bool = True) -> Made:
        """A self-signed certificate, CA:TRUE with keyCertSign unless ``ca`` is False."""
        cert, private = self._paths()
        extensions = (["-addext", "basicConstraints=critical,CA:TRUE",
                       "-addext", "keyUsage=critical,keyCertSign,cRLSign"] if ca else
                      ["-addext", "basicConstraints=critical,CA:FALSE"])
        openssl("req", "-x509", *_newkey(key), "-nodes", "-keyout", private, "-out", cert, "-days", days,
                "-subj", subj, *extensions)
        return Made(cert, private)

    def user(self, issuer: Made, subj: str, *, serial: str, key: str = "ec", days: int = 365) -> Made:
        """A client certificate ``issuer`` signs (``openssl x509 -req``), serial as 0x hex or decimal."""
        cert, private = self._paths()
        csr = cert.with_suffix(".csr")
        openssl("req", "-new", *_newkey(key), "-nodes", "-keyout", private, "-out", csr, "-subj", subj)
        openssl("x509", "-req", "-in", csr, "-CA", issuer.cert, "-CAkey", issuer.key, "-set_serial", serial,
                "-days", days, "-out", cert, "-extfile", self.root / "user.ext")
        return Made(cert, private)


def unique(prefix: str = "") -> str:
    return prefix + secrets.token_hex(4).upper()


def new_cui() -> str:
    """A provider code no other test uses (the certs service does not check CUI digits)."""
    return str(10_000_000 + secrets.randbelow(89_999_999))


def serial_20_octets() -> str:
    """0x + 40 hex digits, top bit clear: exactly 20 octets in DER."""
    return "0x" + f"{secrets.randbits(159) | (1 << 158):040X}"


@pytest.fixture(scope="session")
def ossl(tmp_path_factory) -> OpenSsl:
    return OpenSsl(tmp_path_factory.mktemp("certs-openssl"))


@pytest.fixture
def certs_config(common_config) -> Config:
    return Config(common=common_config, port=0)


@pytest.fixture
async def certs(aiohttp_client, certs_config):
    """The certs app, served by aiohttp's test server (which cancels a handler whose client leaves)."""
    return await aiohttp_client(create_app(certs_config))


@pytest.fixture
async def db(database_url):
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "certs"})
    yield conn
    await conn.close()


class Bus:
    """The session's exchange: publish as other services do (each event as its publisher's
    broker user), and watch certs.# events (as the broker's administrator)."""

    def __init__(self, publishers: infra.Publishers, seen: list[aio_pika.abc.AbstractIncomingMessage]):
        self.publishers, self.seen = publishers, seen

    async def publish(self, event: EventData, cas: str, **envelope_fields) -> Envelope:
        envelope = new_envelope(event, cas)
        if envelope_fields:
            envelope = Envelope(**{**envelope.__dict__, **envelope_fields})
        await self.publishers.publish(envelope)
        return envelope

    def events(self, routing_key: str, **data) -> list[tuple[Envelope, aio_pika.abc.AbstractIncomingMessage]]:
        """The events seen with this routing key whose data has these values."""
        found = []
        for message in self.seen:
            envelope = Envelope.from_json(message.body)
            if message.routing_key == routing_key and all(envelope.data.get(k) == v for k, v in data.items()):
                found.append((envelope, message))
        return found

    async def one(self, routing_key: str, **data) -> Envelope:
        """Wait for exactly one such event and return it."""
        async def arrived():
            return self.events(routing_key, **data)

        found = await eventually(arrived, what=f"{routing_key} {data}")
        assert len(found) == 1, found
        return found[0][0]


@pytest.fixture
async def bus(common_config):
    connection = await aio_pika.connect(infra.admin_amqp_url())
    channel = await connection.channel()
    exchange = await channel.get_exchange(common_config.events_exchange)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="certs.#")
    seen: list = []

    async def on_message(message):
        await message.ack()
        seen.append(message)

    await queue.consume(on_message)
    publishers = infra.Publishers(common_config.events_exchange)
    yield Bus(publishers, seen)
    await publishers.close()
    await connection.close()


async def add_external_user(bus: Bus, db, *, cas: str = "B", cui: str | None = None,
                            name: str = "SC TEST MEDICAL SRL") -> str:
    """Publish ExternalUserCreated as the users service does; return once certs has it."""
    cui = cui or new_cui()
    username = f"{cui}_CAS-{cas}"
    await bus.publish(ExternalUserCreated(username=username, cui=cui, provider_code=cui, provider_name=name,
                                          schema=f"SIUI{cas}", org_unit=f"CAS-{cas}"), cas)

    async def known():
        return await db.fetchval("select deleted_at is null from external_users where username = $1", username)

    await eventually(known, what=f"external user {username} known to certs")
    return username


async def register_issuer(certs, made: Made, headers) -> dict:
    response = await certs.post("/v1/issuers", json={"certificate_pem": made.pem}, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def register_upload(certs, username: str, made: Made, headers) -> dict:
    response = await certs.post("/v1/certificates", json={"username": username, "certificate_pem": made.pem},
                                headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


def openssl_cert_id(issuer_pem, cert_or_serial: list, digest: str) -> dict:
    """The CertID `openssl ocsp` puts in a request: what an OCSP client will ask about."""
    der = openssl("ocsp", "-issuer", issuer_pem, f"-{digest}", *cert_or_serial, "-no_nonce",
                  "-reqout", "/dev/stdout", text=False)
    cert_id = asn1_ocsp.OCSPRequest.load(der)["tbs_request"]["request_list"][0]["req_cert"]
    return {"name": cert_id["issuer_name_hash"].native.hex(), "key": cert_id["issuer_key_hash"].native.hex(),
            "serial": cert_id["serial_number"].native}


def openssl_date(made: Made, which: str) -> datetime:
    """notBefore/notAfter as openssl prints them."""
    out = openssl("x509", "-in", made.cert, "-noout", f"-{which}").strip().split("=", 1)[1]
    return datetime.strptime(out, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=timezone.utc)


def problem_errors(body: str) -> dict:
    return json.loads(body).get("errors", {})


def now() -> datetime:
    return utc_now()


def new_id() -> str:
    return str(uuid.uuid4())
