"""A SoftHSM2 token for the OCSP responder key, in the data directory (dev and tests).

``python -m deploy.hsm init`` makes (or reuses) a token ``siui-ocsp`` whose files live
under ``<data dir>/softhsm/`` (``SOFTHSM2_CONF`` points to its own config there, never
/etc or /var/lib), with random PINs in ``<data dir>/secrets/hsm-pin`` and ``hsm-so-pin``;
generates the responder key inside it (EC P-256, sensitive and not extractable: it can
sign, never be read out) unless it exists; and has the dev root CA issue its responder
certificate from the token's public key. It prints the settings that make ocsp sign
with it, as ``export`` lines (``eval "$(python -m deploy.hsm init)"``; ``make up-hsm``
does that). ``python -m deploy.hsm key --label L`` makes a further key with its
certificate, for a rotation. A production HSM takes the same settings with its own
vendor's module, token and labels; only the key's making differs.

softhsm2-util can only be given PINs on its command line (where ``ps`` shows them), so
the token is initialised with throwaway PINs that are replaced at once, through
PKCS#11, by the ones in the files.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from deploy.devpki import default_data_dir, responder_certificate, write_file

TOKEN_LABEL = "siui-ocsp"
KEY_LABEL = "responder"
#: Where Debian and Ubuntu put SoftHSM2's PKCS#11 module (package softhsm2).
MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                     "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")
P256 = "1.2.840.10045.3.1.7"


class HsmError(RuntimeError):
    """SoftHSM2 is missing or refused (the message says what to do)."""


def find_module() -> Path:
    """SoftHSM2's PKCS#11 module; HsmError naming the package when absent."""
    for candidate in MODULE_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    raise HsmError("SoftHSM2 is not installed: apt-get install softhsm2 (deploy/setup.sh installs it)")


@dataclass(frozen=True)
class SoftHsm:
    """A SoftHSM2 home: its config, token directory and PIN files."""

    home: Path
    pin_file: Path
    so_pin_file: Path
    module: Path
    token_label: str = TOKEN_LABEL

    @classmethod
    def in_data_dir(cls, data_dir: Path, token_label: str = TOKEN_LABEL) -> "SoftHsm":
        data_dir = Path(data_dir).resolve()
        return cls(data_dir / "softhsm", data_dir / "secrets" / "hsm-pin", data_dir / "secrets" / "hsm-so-pin",
                   find_module(), token_label)

    @property
    def conf(self) -> Path:
        return self.home / "softhsm2.conf"

    @property
    def tokens(self) -> Path:
        return self.home / "tokens"

    def env(self) -> dict[str, str]:
        """What a process needs to find this token (SoftHSM2 reads SOFTHSM2_CONF at start)."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def settings(self, key_label: str = KEY_LABEL) -> dict[str, str]:
        """The ocsp settings that sign with ``key_label`` on this token."""
        return {**self.env(), "SIUI_OCSP_PKCS11_MODULE": str(self.module), "SIUI_OCSP_PKCS11_TOKEN": self.token_label,
                "SIUI_OCSP_PKCS11_PIN_FILE": str(self.pin_file), "SIUI_OCSP_PKCS11_KEY_LABEL": key_label}


def _pkcs11_lib(hsm: SoftHsm):
    """The module, loaded for ``hsm``: SoftHSM2 reads its config once per process."""
    import pkcs11

    configured = os.environ.get("SOFTHSM2_CONF")
    if configured and Path(configured) != hsm.conf:
        raise HsmError(f"this process already uses SOFTHSM2_CONF={configured}; run with {hsm.conf}")
    os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
    return pkcs11.lib(str(hsm.module))


def ensure_token(hsm: SoftHsm) -> None:
    """Create the home, its config and the token with the PINs of the files, if missing."""
    hsm.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    hsm.tokens.mkdir(mode=0o700, exist_ok=True)
    if not hsm.conf.exists():
        write_file(hsm.conf, (f"directories.tokendir = {hsm.tokens}\nobjectstore.backend = file\n"
                              "log.level = ERROR\nslots.removable = false\n").encode(), 0o600)
    for pin_file in (hsm.pin_file, hsm.so_pin_file):
        if not pin_file.exists():
            pin_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_file(pin_file, secrets.token_hex(16).encode(), 0o600)
    util = shutil.which("softhsm2-util")
    if util is None:
        raise HsmError("softhsm2-util is missing: apt-get install softhsm2")
    env = {**os.environ, **hsm.env()}
    shown = subprocess.run([util, "--show-slots"], env=env, capture_output=True, text=True, check=False)
    if _has_label(shown.stdout, hsm.token_label):
        return
    throwaway_user, throwaway_so = secrets.token_hex(8), secrets.token_hex(8)
    made = subprocess.run([util, "--init-token", "--free", "--label", hsm.token_label, "--pin", throwaway_user,
                           "--so-pin", throwaway_so], env=env, capture_output=True, text=True, check=False)
    if made.returncode != 0:
        raise HsmError(f"softhsm2-util --init-token failed: {made.stderr.strip() or made.stdout.strip()}")
    token = _pkcs11_lib(hsm).get_token(token_label=hsm.token_label)
    with token.open(rw=True, user_pin=throwaway_user) as session:
        session.set_pin(throwaway_user, hsm.pin_file.read_text().strip())
    with token.open(rw=True, so_pin=throwaway_so) as session:
        session.set_pin(throwaway_so, hsm.so_pin_file.read_text().strip())


def _has_label(show_slots: str, label: str) -> bool:
    return any(line.strip().startswith("Label:") and line.split(":", 1)[1].strip() == label
               for line in show_slots.splitlines())


def ensure_key(hsm: SoftHsm, label: str = KEY_LABEL, kind: str = "ec"):
    """The public key (cryptography) of the signing key ``label``, generated in the token
    if missing: EC P-256 (``kind="ec"``) or RSA 2048 (``"rsa"``), never extractable."""
    from pkcs11 import Attribute, KeyType, ObjectClass
    from pkcs11.exceptions import NoSuchKey
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
    from pkcs11.util.rsa import encode_rsa_public_key

    token = _pkcs11_lib(hsm).get_token(token_label=hsm.token_label)
    with token.open(rw=True, user_pin=hsm.pin_file.read_text().strip()) as session:
        try:
            public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        except NoSuchKey:
            private_template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True,
                                Attribute.DECRYPT: False, Attribute.UNWRAP: False, Attribute.DERIVE: False}
            public_template = {Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
            if kind == "ec":
                parameters = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(P256)}, local=True)
                public, _ = parameters.generate_keypair(store=True, label=label, private_template=private_template,
                                                        public_template=public_template)
            elif kind == "rsa":
                public, _ = session.generate_keypair(KeyType.RSA, 2048, store=True, label=label,
                                                     private_template=private_template,
                                                     public_template=public_template)
            else:
                raise ValueError(f"unknown key kind {kind!r}: ec or rsa")
        if public.key_type == KeyType.EC:
            der = encode_ec_public_key(public)
        else:
            der = encode_rsa_public_key(public)
            return serialization.load_der_public_key(_rsa_spki(der))
        return serialization.load_der_public_key(der)


def _rsa_spki(pkcs1_der: bytes) -> bytes:
    """python-pkcs11 gives an RSA public key as PKCS#1 RSAPublicKey; X.509 wants the SPKI."""
    from asn1crypto import keys

    return keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"},
                               "public_key": keys.RSAPublicKey.load(pkcs1_der)}).dump()


def issue_certificate(data_dir: Path, hsm: SoftHsm, label: str, cert_path: Path, *, kind: str = "ec",
                      days: int = 730) -> Path:
    """The key ``label`` (made if missing) and its responder certificate at ``cert_path``
    (issued by the dev root if missing, or if it is for another key)."""
    ensure_token(hsm)
    public = ensure_key(hsm, label, kind)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert_path.exists():
        from cryptography import x509

        existing = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()
        if existing.public_bytes(serialization.Encoding.DER, spki) == public.public_bytes(
                serialization.Encoding.DER, spki):
            return cert_path
    certificate = responder_certificate(data_dir, public, common_name=f"SIUI Access OCSP Responder ({label})",
                                        days=days)
    write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644, replace=True)
    return cert_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.hsm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="default: $SIUI_DATA_DIR, else .siui")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="the token, the responder key and its certificate; prints the settings")
    key = commands.add_parser("key", help="a further key and its certificate (for a rotation)")
    key.add_argument("--label", required=True)
    for command in commands.choices.values():
        command.add_argument("--rsa", action="store_true", help="RSA 2048 instead of EC P-256")
    args = parser.parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).resolve()
    label = KEY_LABEL if args.command == "init" else args.label
    cert_path = data_dir / "pki" / ("responder-hsm.pem" if args.command == "init" else f"responder-{label}.pem")
    try:
        hsm = SoftHsm.in_data_dir(data_dir)
        issue_certificate(data_dir, hsm, label, cert_path, kind="rsa" if args.rsa else "ec")
    except HsmError as exc:
        print(f"deploy.hsm: {exc}", file=sys.stderr)
        return 1
    if args.command == "init":
        for name, value in {**hsm.settings(label), "SIUI_OCSP_RESPONDER_CERT": str(cert_path)}.items():
            print(f"export {name}={value}")
    else:
        print(f"export SIUI_OCSP_RESPONDER_NEXT_CERT={cert_path}")
        print(f"export SIUI_OCSP_PKCS11_NEXT_KEY_LABEL={label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
