"""The responder's own identities: the current one and, during a rotation, the next.

Each is a certificate with its key, the key in a file or in an HSM (``hsm``). A next
identity must be able to take over at the switch time without any client noticing
more than the new certificate: so it is checked at start, before anything is served,
and a deployment that would switch to a signer clients refuse does not start
(``RotationError``, with the rule that failed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.ocsp.config import Config
from services.ocsp.responder.hsm import Pkcs11Settings, Pkcs11Token
from services.ocsp.responder.responses import ResponderIdentity

__all__ = ["ResponderKeys", "RotationError", "check_rotation", "load_responder_keys"]


class RotationError(ValueError):
    """The next responder certificate cannot take over as configured."""


@dataclass
class ResponderKeys:
    """What ``load_responder_keys`` found; ``tokens`` are closed with ``close()``."""

    current: ResponderIdentity
    next: ResponderIdentity | None = None
    switch_at: datetime | None = None
    tokens: list[Pkcs11Token] = field(default_factory=list)

    def close(self) -> None:
        """Stop the HSM signing threads and close their sessions."""
        for token in self.tokens:
            token.close()
        self.tokens.clear()


def _authority_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        return None


def _signs_ocsp(certificate: x509.Certificate) -> bool:
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usages


def check_rotation(current: x509.Certificate, following: x509.Certificate, switch_at: datetime) -> None:
    """Raise ``RotationError`` unless ``following`` can take over from ``current`` at ``switch_at``.

    It must be an OCSP signer (the OCSPSigning EKU, RFC 6960 §4.2.2.2) from the same
    issuer, by name and by key (its Authority Key Identifier), since clients that trust
    the responder through its CA must trust the next one alike; valid at the switch and
    after it; and the switch must come before the current certificate's notAfter, or
    there would be a time when no signer is valid.
    """
    if not _signs_ocsp(following):
        raise RotationError("the next responder certificate lacks the OCSPSigning extended key usage "
                            "(RFC 6960 4.2.2.2)")
    if following.issuer != current.issuer or _authority_key_id(following) != _authority_key_id(current):
        raise RotationError(f"the next responder certificate is issued by {following.issuer.rfc4514_string()}, "
                            f"not by the current one's issuer {current.issuer.rfc4514_string()} (name and key)")
    if switch_at >= current.not_valid_after_utc:
        raise RotationError(f"SIUI_OCSP_RESPONDER_SWITCH_AT {switch_at.isoformat()} is not before the current "
                            f"responder certificate's notAfter {current.not_valid_after_utc.isoformat()}")
    if not following.not_valid_before_utc <= switch_at < following.not_valid_after_utc:
        raise RotationError(f"the next responder certificate is not valid at the switch {switch_at.isoformat()} "
                            f"(valid {following.not_valid_before_utc.isoformat()} to "
                            f"{following.not_valid_after_utc.isoformat()})")


def _certificate(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise RotationError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except ValueError:
        raise RotationError(f"the {what} {path} is not a PEM certificate") from None


def load_responder_keys(config: Config) -> ResponderKeys:
    """The current identity and, when configured, the next with its switch time (checked).

    Keys come from files, or from the HSM when a PKCS#11 label is set; the token is
    opened once for both. Raises ``ValueError`` (``RotationError`` for the rotation's
    rules) with what to fix.
    """
    keys = ResponderKeys(current=None)  # type: ignore[arg-type]  # filled below
    token = None
    if config.pkcs11_key_label or config.pkcs11_next_key_label:
        token = Pkcs11Token(Pkcs11Settings(config.pkcs11_module, config.pkcs11_token, config.pkcs11_pin_file))
        keys.tokens.append(token)
    try:
        current_cert = _certificate(config.responder_cert, "responder certificate")
        if config.pkcs11_key_label:
            keys.current = ResponderIdentity(current_cert, token.key(config.pkcs11_key_label))
        else:
            keys.current = ResponderIdentity.from_pem(config.responder_cert.read_bytes(),
                                                      config.responder_key.read_bytes())
        if config.responder_next_cert is not None:
            next_cert = _certificate(config.responder_next_cert, "next responder certificate")
            switch_at = config.switch_time
            check_rotation(current_cert, next_cert, switch_at)
            if config.pkcs11_next_key_label:
                following = ResponderIdentity(next_cert, token.key(config.pkcs11_next_key_label))
            else:
                following = ResponderIdentity.from_pem(config.responder_next_cert.read_bytes(),
                                                       config.responder_next_key.read_bytes())
            keys.next, keys.switch_at = following, switch_at
    except BaseException:
        keys.close()
        raise
    return keys
