"""The issuing authority's own status of its certificates, from its CRLs: which URLs may
be fetched, what a CRL says once its signature verifies against the issuer's certificate,
and when to look again. Plain functions, no I/O (the download is ``crl_fetch``).

Two sources of truth meet here: SIUI's registry (a house registers, suspends, reinstates)
and the issuer (which revokes). A CRL that does not verify, names another issuer, or is a
delta is refused whole: a forged or partial list must never mark a certificate revoked.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from shared import errors

#: At most this many CRL URLs per issuer record: a CA publishes one or two.
MAX_URLS = 10
MAX_URL_LENGTH = 2048
SCHEMES = ("http", "https")
#: A CRL whose thisUpdate is later than now by more than this comes from a wrong clock.
CLOCK_SKEW = timedelta(minutes=5)


class CrlError(ValueError):
    """Why a fetched CRL was not used; the text is what ``status_error`` shows."""


@dataclass(frozen=True)
class CrlRead:
    """What a verified CRL says of the serials asked about."""

    this_update: datetime
    next_update: datetime | None
    #: serial -> (revocation time, CRLReason in asn1crypto's spelling or None)
    revoked: dict[int, tuple[datetime, str | None]] = field(default_factory=dict)
    entries: int = 0


# -- URLs -------------------------------------------------------------------------------

def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a CRL source (None: it can)."""
    if not isinstance(url, str) or not url.strip():
        return "must be a URL"
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    if any(not c.isprintable() or c.isspace() for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return "must be an http or https URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    return None


def check_crl_urls(raw: object) -> list[str]:
    """The ``crl_urls`` of a PATCH, checked (422 naming each bad one), duplicates removed."""
    if not isinstance(raw, list):
        raise errors.Invalid("crl_urls must be a list of URLs", errors={"crl_urls": "a list of URLs"})
    if len(raw) > MAX_URLS:
        raise errors.Invalid("too many crl_urls", errors={"crl_urls": f"at most {MAX_URLS}"})
    urls = [url.strip() if isinstance(url, str) else url for url in raw]
    problems = {f"crl_urls[{i}]": problem for i, url in enumerate(urls) if (problem := url_problem(url))}
    if problems:
        raise errors.Invalid("crl_urls: " + "; ".join(f"{k} {v}" for k, v in problems.items()), errors=problems)
    return list(dict.fromkeys(urls))


def distribution_points(certificate: x509.Certificate) -> list[str]:
    """The http(s) URLs of a certificate's CRL Distribution Points (LDAP ones are left
    out: this system fetches over HTTP only), at most ``MAX_URLS``."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    urls = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and url_problem(name.value) is None:
                urls.append(name.value)
    return list(dict.fromkeys(urls))[:MAX_URLS]


def host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether the allow-list lets this host be asked; an entry covers its subdomains.
    An empty list lets any host through (the address check still applies)."""
    host = host.lower().rstrip(".")
    if not allowed_hosts:
        return True
    return any(host == entry or host.endswith("." + entry) for entry in allowed_hosts)


def address_allowed(address: str, allow_loopback: bool) -> bool:
    """Whether a resolved address may be connected to: public ones only, loopback too
    when the set-up allows it (development and tests serve CRLs locally). Private, link-
    local and other special addresses never: a CRL URL must not reach into the network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.is_loopback:
        return allow_loopback
    return ip.is_global


# -- the CRL itself ---------------------------------------------------------------------

def read_crl(data: bytes, issuer_der: bytes, serials: Iterable[int], now: datetime) -> CrlRead:
    """Verify a CRL (DER or PEM) against the issuer's certificate and read what it says
    of ``serials``; CrlError when it cannot be used."""
    try:
        crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----BEGIN")
               else x509.load_der_x509_crl(data))
    except ValueError as exc:
        raise CrlError(f"not a CRL: {exc}") from None
    issuer = x509.load_der_x509_certificate(issuer_der)
    if crl.issuer != issuer.subject:
        raise CrlError(f"the CRL is issued by {crl.issuer.rfc4514_string()!r}, not by this authority")
    try:
        valid = crl.is_signature_valid(issuer.public_key())
    except (UnsupportedAlgorithm, TypeError, ValueError):
        valid = False
    if not valid:
        raise CrlError("the CRL's signature does not verify with the authority's certificate")
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        raise CrlError("a delta CRL: only complete CRLs are used")
    this_update, next_update = crl.last_update_utc, crl.next_update_utc
    if this_update > now + CLOCK_SKEW:
        raise CrlError(f"the CRL's thisUpdate {this_update.isoformat()} is in the future")
    wanted = set(serials)
    revoked: dict[int, tuple[datetime, str | None]] = {}
    entries = 0
    for entry in crl:
        entries += 1
        if entry.serial_number in wanted:
            reason = _reason(entry)
            if reason != "remove_from_crl":  # only meaningful in a delta, which is refused
                revoked[entry.serial_number] = (entry.revocation_date_utc, reason)
    return CrlRead(this_update, next_update, revoked, entries)


def _reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except (x509.ExtensionNotFound, ValueError):
        return None
    # cryptography's ReasonFlags names are asn1crypto's spellings (key_compromise, ...).
    return flag.name


def newest(current_this_update: datetime | None, read: CrlRead) -> bool:
    """Whether ``read`` is not older than the CRL already held (an older copy from a
    lagging mirror must not undo what a newer one said)."""
    return current_this_update is None or read.this_update >= current_this_update


# -- when to look again -----------------------------------------------------------------

def next_check(now: datetime, next_update: datetime | None, *, min_interval: timedelta,
               max_interval: timedelta) -> datetime:
    """When to fetch again after a success: at the CRL's nextUpdate, but never sooner than
    ``min_interval`` (a nextUpdate already past, or a CA publishing every minute) nor later
    than ``max_interval`` (a CA may publish before its nextUpdate, and revocations matter)."""
    target = next_update if next_update is not None else now + max_interval
    return min(max(target, now + min_interval), now + max_interval)


def stale(next_update: datetime | None, now: datetime) -> bool:
    """A CRL past its nextUpdate: still used (a revocation it lists stays true), but the
    issuer's "good" is no longer vouched for (shown as unknown, alerted on)."""
    return next_update is not None and now > next_update
