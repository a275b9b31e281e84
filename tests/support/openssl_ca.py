"""Certificates made by the real ``openssl`` CLI, for the certs service's tests: what a
CA's own tooling writes (its DN encodings, its serials, its dates) is what the service must
read, so these are made by openssl on purpose, not by tests/support/pki.py."""
from __future__ import annotations

import asyncio
import secrets
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from asn1crypto import ocsp as asn1_ocsp

# The seed's issuing authority, as the service prints it and as openssl -subj takes it.
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


async def openssl_ocsp(*args) -> str:
    """``openssl ocsp`` with ``args``, its output and errors together; asynchronous, for
    tests whose server under test runs on the same event loop."""
    process = await asyncio.create_subprocess_exec("openssl", "ocsp", *map(str, args), stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return out.decode()


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


def serial_20_octets() -> str:
    """0x + 40 hex digits, top bit clear: exactly 20 octets in DER."""
    return "0x" + f"{secrets.randbits(159) | (1 << 158):040X}"


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
