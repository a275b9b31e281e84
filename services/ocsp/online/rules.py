"""The online channel's decisions, free of HTTP and TLS: who goes online, and the reason
and message (Romanian, or English on request) given to everyone else."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.ocsp.online.keys import KeyRecord
from services.ocsp.responder.registry import CertificateRecord
from shared.holders import Holder, holder_key, same_holder_key

# (Romanian, English). {username}, {serial}, {date}, {issuer} are filled in.
MESSAGES: dict[str, tuple[str, str]] = {
    "online": ("Conectat online la SIUI ca {username}.", "Online with SIUI as {username}."),
    "certificate_missing": (
        "Nu a fost prezentat niciun certificat digital. Instalați certificatul furnizorului și "
        "încercați din nou.",
        "No digital certificate was presented. Install the provider's certificate and try again."),
    "credentials_missing": (
        "Lipsesc utilizatorul și seria de licență (utilizator <CUI>_CAS-<cod casă>, parola = seria "
        "de licență).",
        "The user name and licence serial are missing (user <CUI>_CAS-<house code>, password = "
        "the licence serial)."),
    "unknown_user": (
        "Utilizatorul {username} nu există în SIUI. Verificați CUI-ul și casa de asigurări aleasă "
        "la activare.",
        "User {username} does not exist in SIUI. Check the CUI and the insurance house chosen at "
        "activation."),
    "certificate_not_registered": (
        "Certificatul digital (serie {serial}) nu este înregistrat în SIUI. Cereți casei de "
        "asigurări să îl adauge la Certificate utilizatori.",
        "The digital certificate (serial {serial}) is not registered in SIUI. Ask your insurance "
        "house to add it to the user certificates."),
    "renewal_pending": (
        "Certificatul nou (serie {serial}) a fost primit și așteaptă aprobarea casei de asigurări. "
        "Veți putea lucra online cu el imediat după aprobare; până atunci puteți folosi certificatul "
        "vechi, cât timp este valabil.",
        "The new certificate (serial {serial}) has been received and awaits your insurance house's "
        "approval. You can work online with it as soon as it is approved; until then you may use the "
        "old certificate while it is valid."),
    "renewal_rejected": (
        "Casa de asigurări a respins certificatul nou (serie {serial}): {reason}",
        "Your insurance house rejected the new certificate (serial {serial}): {reason}"),
    "certificate_other_user": (
        "Certificatul digital prezentat este înregistrat pentru alt utilizator, nu pentru {username}.",
        "The digital certificate presented is registered to another user, not to {username}."),
    "certificate_suspended": (
        "Certificatul digital este suspendat de casa de asigurări: accesul online este oprit. "
        "Contactați casa de asigurări.",
        "The insurance house has suspended this digital certificate: online access is stopped. "
        "Contact your insurance house."),
    "certificate_revoked": (
        "Certificatul digital a fost revocat. Folosiți un certificat valabil și cereți "
        "înregistrarea lui.",
        "The digital certificate has been revoked. Use a valid certificate and ask for it to be "
        "registered."),
    "revoked_by_issuer": (
        "Certificatul a fost revocat de emitent ({issuer}) la {date}. Folosiți un certificat valabil "
        "și cereți înregistrarea lui.",
        "The certificate was revoked by its issuer ({issuer}) on {date}. Use a valid certificate "
        "and ask for it to be registered."),
    "certificate_expired": (
        "Certificatul digital a expirat la {date}. Reînnoiți-l și cereți înregistrarea noului "
        "certificat.",
        "The digital certificate expired on {date}. Renew it and ask for the new one to be "
        "registered."),
    "certificate_not_yet_valid": (
        "Certificatul digital este valabil abia de la {date}.",
        "The digital certificate is not valid before {date}."),
    "wrong_key": (
        "Seria de licență nu este cea a utilizatorului {username}.",
        "The licence serial is not the one of user {username}."),
    "key_malformed": (
        "Seria de licență are o greșeală de scriere: verificați caracterele (patru grupe, "
        "de forma XXXXX-XXXX-XXXX-XXXX).",
        "The licence serial has a typo: check the characters (four groups, XXXXX-XXXX-XXXX-XXXX)."),
    # {when}: " la 2026-12-02 14:05 UTC" when the reset's time is known (online.expiry).
    "key_replaced": (
        "Seria de licență a fost înlocuită{when} (resetare parolă). Reactivați aplicația cu seria "
        "nouă primită de la casa de asigurări.",
        "The licence serial was replaced{when} (password reset). Reactivate the application with "
        "the new serial from your insurance house."),
    "session_invalid": (
        "Sesiunea online nu este valabilă pentru acest certificat. Conectați-vă din nou.",
        "The online session is not valid for this certificate. Connect again."),
    "session_expired": ("Sesiunea online a expirat. Conectați-vă din nou.",
                        "The online session has expired. Connect again."),
}
REASONS = tuple(code for code in MESSAGES if code != "online")


def pick_language(accept_language: str | None) -> str:
    """'en' when the client prefers English over Romanian, else 'ro'."""
    best, best_q = "ro", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        language = tag.strip().lower().split("-")[0]
        if language in ("ro", "en") and q > best_q:
            best, best_q = language, q
    return best


def message_for(code: str, language: str, **values: str) -> str:
    """The message of ``code`` in ``language`` ('ro' or 'en')."""
    ro, en = MESSAGES[code]
    return (en if language == "en" else ro).format_map({"username": "", "serial": "", "date": "",
                                                        "issuer": "", "reason": "", "when": "", **values})


@dataclass(frozen=True, slots=True)
class ClientCert:
    """What the channel uses of the presented certificate."""

    serial: int
    not_before: datetime
    not_after: datetime
    issuer_id: str | None      # the registered issuer that signed it, if any
    fingerprint: str           # SHA-256 of the DER, hex
    der: bytes = field(default=b"", repr=False, compare=False)  # the certificate as presented
    holder: Holder | None = None   # who it names (``trust.identified``: a renewal is recognised by it)
    pem: str = ""                  # the certificate itself, reported when it is a renewal

    @property
    def serial_text(self) -> str | None:
        """The serial in decimal, as the log keeps it; None beyond RFC 5280's 20 octets
        (no registered certificate has such a serial, and its decimal is unbounded)."""
        return str(self.serial) if self.serial.bit_length() <= MAX_SERIAL_BITS else None

    @property
    def serial_hex(self) -> str:
        """The serial as a person compares it with the certificate's details (capped)."""
        text = format(self.serial, "X")
        return text if len(text) <= 42 else text[:40] + "…"


#: RFC 5280 4.1.2.2: at most 20 octets.
MAX_SERIAL_BITS = 160
#: Longest user name the channel looks at: <13-digit CNP>_CAS-<6-letter house>, with room.
MAX_USERNAME = 64
MAX_SECRET = 64  # a licence serial is 20 characters with its dashes


def clean_claim(username: str | None) -> str | None:
    """A user name as a client claimed it, made safe to keep in the log: printable
    characters only (no CR/LF to forge lines, no controls), capped."""
    if not username:
        return None
    kept = "".join(c for c in username[:MAX_USERNAME] if c.isprintable())
    return kept or None


@dataclass(frozen=True, slots=True)
class Attribution:
    """Whose attempt the log says it was: the house and user are set only when a
    certificate verified by TLS and registered in SIUI backs it; whatever the client only
    claimed is kept apart, marked as claimed."""

    cas: str | None
    username: str | None
    claimed: str | None


def attribute(record: CertificateRecord | None, username: str | None) -> Attribution:
    """The log's attribution of an attempt (see ``Attribution``)."""
    if record is None:
        return Attribution(None, None, clean_claim(username))
    claimed = None if username == record.username else clean_claim(username)
    return Attribution(record.cas, record.username, claimed)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a connect or heartbeat: ``reason`` is None when online."""

    reason: str | None
    record: CertificateRecord | None = None
    key: KeyRecord | None = None
    replaced_at: datetime | None = None  # key_replaced: when the presented key was replaced

    @property
    def online(self) -> bool:
        return self.reason is None


def renewal_of(cert: ClientCert, username: str, registered: tuple[CertificateRecord, ...],
               refused: bool) -> tuple[str, CertificateRecord | None] | None:
    """Whether an unregistered certificate is a renewal (issue 15): issued by a registered
    authority and naming the holder (``shared.holders``) of a certificate registered to
    this user that is not revoked. ``("renewal_rejected", None)`` once its house refused
    it, ``("renewal_pending", the certificate it follows)``, or None: not a renewal."""
    if cert.issuer_id is None or cert.holder is None or cert.serial_text is None:
        return None  # beyond 20 octets no certificate is ever registered: nothing to renew
    if refused:
        return "renewal_rejected", None
    presented = holder_key(cert.holder)
    followed = [r for r in registered if r.username == username and r.status != "revoked"
                and r.holder_key is not None and same_holder_key(presented, r.holder_key)]
    if not followed:
        return None
    # The one valid longest is the one renewed (certs picks the same: renewals.followed).
    return "renewal_pending", max(followed, key=lambda r: r.not_after.timestamp() if r.not_after else float("-inf"))


def evaluate(cert: ClientCert | None, username: str | None, key: KeyRecord | None,
             record: CertificateRecord | None, key_verdict: str, now: datetime,
             renewal: str | None = None) -> Verdict:
    """Decide a connect. The order is the order a person fixes things in: the
    certificate at hand, who they say they are, whether the house allows that
    certificate for them, and last the key. ``renewal`` (``renewal_of``) tells an
    unregistered certificate's renewal apart: said only to the user's right key, and
    only for a certificate within its validity (else its own reason is the clearer)."""
    if cert is None:
        return Verdict("certificate_missing")
    if not username:
        return Verdict("credentials_missing")
    if key is None or not key.active:
        return Verdict("unknown_user", record)
    if record is None:
        if renewal is not None and key_verdict == "ok" and cert.not_before <= now < cert.not_after:
            return Verdict(renewal, None, key)
        return Verdict("certificate_not_registered", None, key)
    if record.username != username:
        return Verdict("certificate_other_user", record, key)
    if record.status == "revoked":
        return Verdict("revoked_by_issuer" if record.revoked_by_issuer else "certificate_revoked", record, key)
    if record.suspended:
        return Verdict("certificate_suspended", record, key)
    if now >= cert.not_after:
        return Verdict("certificate_expired", record, key)
    if now < cert.not_before:
        return Verdict("certificate_not_yet_valid", record, key)
    if key_verdict != "ok":
        return Verdict(key_verdict if key_verdict in MESSAGES else "wrong_key", record, key)
    return Verdict(None, record, key)
