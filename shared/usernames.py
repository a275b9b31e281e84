"""The names an external user carries in SIUI, written once for every service.

A provider that received an activation key at house ``cas`` is the external user
``<CUI>_CAS-<cas>`` (``12433636_CAS-B``), of schema ``SIUI<cas>`` and org unit
``CAS-<cas>``: what the seed's screens show (Suii user name, Suii schema, Suii org unit).
keygen makes the name, users creates the user, certs and ocsp read the house back from
it; a rule copied into each drifts, so they all call these.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from shared.houses import house, is_house

__all__ = ["ExternalName", "external_username", "house_of", "house_schema", "org_unit", "parse_external_username"]

# A CUI is 2..10 digits, a CNP 13: the CUI/CNP of the provider, then its house's org unit.
_EXTERNAL = re.compile(r"([0-9]{2,13})_CAS-([A-Z]{1,6})")
MAX_LENGTH = 13 + len("_CAS-") + 6


@dataclass(frozen=True, slots=True)
class ExternalName:
    """An external username taken apart."""

    cui: str
    cas: str

    def __str__(self) -> str:
        return external_username(self.cui, self.cas)


def org_unit(cas: str) -> str:
    """The org unit of a house: ``CAS-B`` (``CNAS`` for the national house)."""
    return house(cas).short


def house_schema(cas: str) -> str:
    """The SIUI schema of a house's users: ``SIUIB`` for house B."""
    return f"SIUI{house(cas).code}"


def external_username(cui: str, cas: str) -> str:
    """The external user of provider ``cui`` at house ``cas``: ``12433636_CAS-B``."""
    return f"{cui}_{org_unit(cas)}"


def parse_external_username(name: object) -> ExternalName | None:
    """``<CUI>_CAS-<cas>`` taken apart, or None when ``name`` is not exactly that form with
    a real house code (case matters: the names are made upper case)."""
    if not isinstance(name, str) or len(name) > MAX_LENGTH:
        return None
    match = _EXTERNAL.fullmatch(name)
    if match is None or not is_house(match.group(2)):
        return None
    return ExternalName(match.group(1), match.group(2))


def house_of(username: str, claimed: str | None = None) -> str:
    """The house of external user ``username``, which its name says; ``claimed`` (an
    event envelope's ``cas``), when given, must agree. ValueError otherwise: an event
    about no real house, or about another house's user, is refused, never guessed."""
    name = parse_external_username(username)
    if name is None:
        raise ValueError(f"not an external username: {username!r:.60}")
    if claimed and claimed != name.cas:
        raise ValueError(f"an event of house {claimed!r:.10} about user {username!r:.60}")
    return name.cas
