"""The national Trusted List (ETSI TS 119 612): its XML signature verified against the
configured list operator's certificate (signxml: no hand-written canonicalisation), the
qualified-certificate CA services (``Svctype/CA/QC``) read from what the signature covers,
and what changes against the registered issuers. Plain functions, no I/O.

Parsing is bounded: a size cap before anything is read, no DTD at all (so no entity
expansion and no external entities), no network, lxml's default depth and node limits.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidInput, SignXMLException

from shared.events import parse_time

from .pki import IssuerFacts, is_ca, issuer_facts, to_pem

TSL_NS = "http://uri.etsi.org/02231/v2#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
GRANTED = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
#: A real national list is well under 2 MB; far more is not a list but an attack.
MAX_BYTES_DEFAULT = 10 * 1024 * 1024
MAX_SERVICES = 2000
MAX_NAME = 300
_NS = {"t": TSL_NS, "ds": DS_NS}


class TrustedListError(ValueError):
    """Why a document is not a trusted list this system accepts (answered 422)."""


@dataclass(frozen=True)
class ListedService:
    """A CA/QC service as listed: its provider, its name, its status, its CA certificate."""

    tsp_name: str
    service_name: str
    status: str
    status_since: datetime | None
    facts: IssuerFacts

    @property
    def granted(self) -> bool:
        return self.status == GRANTED

    def to_json(self) -> dict[str, Any]:
        return {"tsp_name": self.tsp_name, "service_name": self.service_name, "status": self.status,
                "status_since": self.status_since.isoformat() if self.status_since else None,
                "subject_dn": self.facts.subject_dn, "certificate_pem": to_pem(self.facts.certificate_der)}


def listed_from_json(data: dict[str, Any]) -> ListedService:
    """A ListedService as ``to_json`` stored it (an upload awaiting apply)."""
    since = data.get("status_since")
    return ListedService(data["tsp_name"], data["service_name"], data["status"],
                         parse_time(since, "status_since") if since else None,
                         issuer_facts(data["certificate_pem"], "trusted_list"))


@dataclass(frozen=True)
class TrustedList:
    """What a verified list says: its identity and its CA/QC services."""

    sequence_number: int
    territory: str
    issued_at: datetime | None
    next_update: datetime | None
    digest: bytes  # SHA-256 of the document as uploaded
    services: tuple[ListedService, ...] = ()


def read_trusted_list(data: bytes, operator_pem: str, *, max_bytes: int = MAX_BYTES_DEFAULT) -> TrustedList:
    """Verify the list's signature with the operator's certificate, then read the CA/QC
    services from the signed element only; TrustedListError when any of it fails."""
    if len(data) > max_bytes:
        raise TrustedListError(f"the document is larger than {max_bytes} bytes")
    _refuse_dtd(data)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=False)
    try:
        document = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise TrustedListError(f"not well-formed XML: {str(exc)[:200]}") from None
    references = len(document.findall("ds:Signature/ds:SignedInfo/ds:Reference", _NS))
    if references == 0:
        raise TrustedListError("the list carries no enveloped XML signature")
    try:
        # Several references: a XAdES signature also signs its SignedProperties.
        results = XMLVerifier().verify(data, x509_cert=operator_pem, parser=parser,
                                       expect_config=SignatureConfiguration(expect_references=references))
    except (SignXMLException, InvalidInput, ValueError) as exc:
        raise TrustedListError(f"the list's signature does not verify with the list operator's "
                               f"certificate: {exc.__class__.__name__}: {str(exc)[:200]}") from None
    results = results if isinstance(results, list) else [results]
    signed = next((r.signed_xml for r in results
                   if r.signed_xml is not None and r.signed_xml.tag == f"{{{TSL_NS}}}TrustServiceStatusList"), None)
    if signed is None:
        raise TrustedListError("the signature does not cover the TrustServiceStatusList")
    return _read(signed, hashlib.sha256(data).digest())


def _refuse_dtd(data: bytes) -> None:
    # A trusted list has no DTD; refusing any keeps entity expansion out entirely.
    head = data[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in data.lower():
        raise TrustedListError("a document type declaration or entity is not allowed")


def _read(root: etree._Element, digest: bytes) -> TrustedList:
    info = root.find("t:SchemeInformation", _NS)
    if info is None:
        raise TrustedListError("no SchemeInformation")
    try:
        sequence = int(_text(info, "t:TSLSequenceNumber") or "")
    except ValueError:
        raise TrustedListError("TSLSequenceNumber is not a number") from None
    services = []
    for provider in root.iterfind("t:TrustServiceProviderList/t:TrustServiceProvider", _NS):
        tsp_name = _name(provider, "t:TSPInformation/t:TSPName")
        for service in provider.iterfind("t:TSPServices/t:TSPService/t:ServiceInformation", _NS):
            if _text(service, "t:ServiceTypeIdentifier") != CA_QC:
                continue
            services.extend(_services(service, tsp_name))
            if len(services) > MAX_SERVICES:
                raise TrustedListError(f"more than {MAX_SERVICES} CA/QC services")
    return TrustedList(sequence, _text(info, "t:SchemeTerritory") or "", _time(info, "t:ListIssueDateTime"),
                       _time(info, "t:NextUpdate/t:dateTime"), digest, tuple(_newest_per_dn(services)))


def _services(service: etree._Element, tsp_name: str) -> list[ListedService]:
    name = _name(service, "t:ServiceName")
    status = _text(service, "t:ServiceStatus") or ""
    since = _time(service, "t:StatusStartingTime")
    found = []
    for element in service.iterfind("t:ServiceDigitalIdentity/t:DigitalId/t:X509Certificate", _NS):
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
            certificate = x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            raise TrustedListError(f"service {name!r}: an X509Certificate that cannot be read") from None
        if not is_ca(certificate):
            continue  # a CA/QC service may also list e.g. its OCSP responder's certificate
        found.append(ListedService(tsp_name, name, status, since,
                                   issuer_facts(base64.b64encode(der).decode(), "trusted_list")))
    return found


def _newest_per_dn(services: list[ListedService]) -> list[ListedService]:
    # One issuer per DN in this system: of a service's several generations, the newest.
    chosen: dict[str, ListedService] = {}
    for service in services:
        current = chosen.get(service.facts.dn_key)
        if current is None or (service.granted, service.facts.not_before) > (current.granted,
                                                                               current.facts.not_before):
            chosen[service.facts.dn_key] = service
    return sorted(chosen.values(), key=lambda s: (s.tsp_name, s.service_name, s.facts.subject_dn))


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path, _NS)
    return (found.text or "").strip() if found is not None else None


def _name(element: etree._Element, path: str) -> str:
    names = element.findall(f"{path}/t:Name", _NS)
    chosen = next((n for n in names if n.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"),
                  names[0] if names else None)
    return ((chosen.text or "").strip() if chosen is not None else "")[:MAX_NAME]


def _time(element: etree._Element, path: str) -> datetime | None:
    text = _text(element, path)
    if not text:
        return None
    try:
        return parse_time(text, path)
    except ValueError:
        raise TrustedListError(f"{path.replace('t:', '')} is not an ISO 8601 moment with a zone") from None


# -- what changes -------------------------------------------------------------------------

@dataclass
class Diff:
    """The list against the registered issuers: what applying it would do."""

    new: list[ListedService] = field(default_factory=list)
    changed: list[tuple[Any, ListedService, list[str]]] = field(default_factory=list)  # (row, service, what)
    withdrawn: list[tuple[Any, str]] = field(default_factory=list)  # (row, why)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "new": [s.to_json() for s in self.new],
            "changed": [{"issuer_id": str(row["id"]), "changes": what, **s.to_json()} for row, s, what in self.changed],
            "withdrawn": [{"issuer_id": str(row["id"]), "subject_dn": row["subject_dn"], "reason": why}
                          for row, why in self.withdrawn],
            "unchanged": self.unchanged,
        }

    @property
    def empty(self) -> bool:
        return not (self.new or self.changed or self.withdrawn)


def diff(trusted: TrustedList, issuers: list[Any]) -> Diff:
    """Compare the granted CA/QC services with the issuers (rows with dn_key,
    certificate_der and the tl_* columns). Issuers from an earlier list that this one no
    longer grants are withdrawn; issuers CNAS registered by hand are never withdrawn."""
    by_key = {row["dn_key"]: row for row in issuers}
    result = Diff()
    listed_granted = set()
    for service in trusted.services:
        row = by_key.get(service.facts.dn_key)
        if not service.granted:
            continue
        listed_granted.add(service.facts.dn_key)
        if row is None:
            result.new.append(service)
            continue
        what = _changes(row, service)
        if what:
            result.changed.append((row, service, what))
        else:
            result.unchanged += 1
    statuses = {s.facts.dn_key: s.status for s in trusted.services}
    for row in issuers:
        if row["tl_imported_at"] is None or row["tl_withdrawn_at"] is not None:
            continue
        if row["dn_key"] not in listed_granted:
            status = statuses.get(row["dn_key"])
            result.withdrawn.append((row, f"status {status}" if status else "no longer in the list"))
    return result


def _changes(row: Any, service: ListedService) -> list[str]:
    what = []
    if bytes(row["certificate_der"]) != service.facts.certificate_der:
        what.append("certificate")
    if row["tl_imported_at"] is None:
        what.append("listed")  # registered by hand; now also known from the list
    elif row["tl_withdrawn_at"] is not None:
        what.append("granted again")
    if (row["tl_tsp_name"], row["tl_service_name"]) != (service.tsp_name, service.service_name) \
            and "listed" not in what:
        what.append("names")
    return what
