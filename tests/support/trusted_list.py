"""A national Trusted List as ETSI TS 119 612 (v2) lays it out, built in the test and
signed with the real XML-signature library (signxml, enveloped, as the list operator):
scheme information, trust service providers, their services with status and certificate."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree
from signxml import XMLSigner

from shared.clock import utc_now
from tests.support.pki import Issued

TSL = "http://uri.etsi.org/02231/v2#"
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
TSA_QTST = "http://uri.etsi.org/TrstSvc/Svctype/TSA/QTST"
GRANTED = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
WITHDRAWN = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Service:
    """One TSPService: its provider, name, type, status and certificate."""

    tsp: str
    name: str
    certificate: Issued
    status: str = GRANTED
    type: str = CA_QC


def _el(parent, tag: str, text: str | None = None, **attrs):
    element = etree.SubElement(parent, f"{{{TSL}}}{tag}", **attrs)
    if text is not None:
        element.text = text
    return element


def _names(parent, tag: str, name: str) -> None:
    holder = _el(parent, tag)
    _el(holder, "Name", name, **{XML_LANG: "en"})
    _el(holder, "Name", name, **{XML_LANG: "ro"})


def build(services: list[Service], *, sequence: int = 1, issued: datetime | None = None) -> etree._Element:
    """The unsigned list."""
    issued = (issued or utc_now()).replace(microsecond=0)
    root = etree.Element(f"{{{TSL}}}TrustServiceStatusList", nsmap={None: TSL},
                         Id="tsl-ro", TSLTag="http://uri.etsi.org/19612/TSLTag")
    info = _el(root, "SchemeInformation")
    _el(info, "TSLVersionIdentifier", "5")
    _el(info, "TSLSequenceNumber", str(sequence))
    _el(info, "TSLType", "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric")
    _names(info, "SchemeOperatorName", "Autoritatea pentru Digitalizarea Romaniei")
    _el(info, "SchemeTerritory", "RO")
    _el(info, "ListIssueDateTime", issued.isoformat().replace("+00:00", "Z"))
    _el(_el(info, "NextUpdate"), "dateTime", (issued + timedelta(days=180)).isoformat().replace("+00:00", "Z"))
    providers = _el(root, "TrustServiceProviderList")
    by_tsp: dict[str, list[Service]] = {}
    for service in services:
        by_tsp.setdefault(service.tsp, []).append(service)
    for tsp, listed in by_tsp.items():
        provider = _el(providers, "TrustServiceProvider")
        _names(_el(provider, "TSPInformation"), "TSPName", tsp)
        holder = _el(provider, "TSPServices")
        for service in listed:
            information = _el(_el(holder, "TSPService"), "ServiceInformation")
            _el(information, "ServiceTypeIdentifier", service.type)
            _names(information, "ServiceName", service.name)
            digital = _el(_el(information, "ServiceDigitalIdentity"), "DigitalId")
            _el(digital, "X509Certificate", base64.b64encode(service.certificate.der).decode())
            _el(information, "ServiceStatus", service.status)
            _el(information, "StatusStartingTime", (issued - timedelta(days=30)).isoformat().replace("+00:00", "Z"))
    return root


def signed(services: list[Service], operator: Issued, **kw) -> bytes:
    """The list, signed by ``operator`` (enveloped XML signature over the whole list)."""
    root = build(services, **kw)
    signature = XMLSigner(signature_algorithm="ecdsa-sha256").sign(root, key=operator.key, cert=[operator.pem],
                                                                    reference_uri="#tsl-ro")
    return etree.tostring(signature, xml_declaration=True, encoding="UTF-8")
