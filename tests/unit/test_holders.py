"""The renewal's holder rule (shared.holders): same subject, or the same qualified
identifiers, whatever the encoding; nothing else."""
from __future__ import annotations

from datetime import datetime, timezone

from cryptography import x509
from cryptography.x509.oid import NameOID

from shared.holders import Holder, holder_of, same_holder
from tests.support.pki import TestPki, client

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
SN, ORG_ID = x509.ObjectIdentifier("2.5.4.5"), x509.ObjectIdentifier("2.5.4.97")


def dn(*pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_the_same_subject_however_written_is_the_same_holder():
    a = dn((NameOID.COUNTRY_NAME, "RO"), (NameOID.ORGANIZATION_NAME, "SC DEMO MEDICAL SRL"),
           (NameOID.COMMON_NAME, "Ion  Popescu"))
    b = dn((NameOID.COMMON_NAME, "ion popescu"), (NameOID.COUNTRY_NAME, "ro"),
           (NameOID.ORGANIZATION_NAME, "sc demo medical srl"))
    assert same_holder(holder_of(a), holder_of(b))


def test_a_changed_subject_keeps_its_holder_through_the_serial_number_or_the_organization_identifier():
    old = dn((NameOID.COMMON_NAME, "Ion Popescu"), (NameOID.LOCALITY_NAME, "Cluj"), (SN, "PNORO-1800101221144"))
    moved = dn((NameOID.COMMON_NAME, "Ion Popescu"), (NameOID.LOCALITY_NAME, "Bucuresti"),
               (SN, "pnoro-1800101221144"))
    assert same_holder(holder_of(moved), holder_of(old))
    firm = dn((NameOID.COMMON_NAME, "SC DEMO SRL"), (ORG_ID, "VATRO-12433636"))
    renamed = dn((NameOID.COMMON_NAME, "SC DEMO MEDICAL SRL"), (ORG_ID, "VATRO-12433636"))
    assert same_holder(holder_of(renamed), holder_of(firm))


def test_another_holder_is_not_the_same():
    ion = dn((NameOID.COMMON_NAME, "Ion Popescu"), (SN, "PNORO-1800101221144"), (ORG_ID, "VATRO-12433636"))
    ana = dn((NameOID.COMMON_NAME, "Ana Ionescu"), (SN, "PNORO-2800101221145"), (ORG_ID, "VATRO-18288250"))
    assert not same_holder(holder_of(ana), holder_of(ion))
    # Absent identifiers on both sides are not "equal": they match nothing.
    assert not same_holder(holder_of(dn((NameOID.COMMON_NAME, "A"))), holder_of(dn((NameOID.COMMON_NAME, "B"))))
    assert not same_holder(Holder(""), Holder(""))


def test_a_renewal_by_the_same_ca_names_the_same_holder_and_travels_as_json():
    pki = TestPki.at(NOW, "holders")
    old = client(pki.issuing, pki.name("Cabinet Dr Pop"), now=NOW)
    new = client(pki.issuing, pki.name("Cabinet Dr Pop"), now=NOW)
    assert old.serial != new.serial
    holder = holder_of(new.cert.subject)
    assert same_holder(holder, holder_of(old.cert.subject))
    assert Holder.from_json(holder.to_json()) == holder
    assert Holder.from_json({"subject": 3}) is None and Holder.from_json(None) is None


# -- the compact key a responder keeps (issue 14) -------------------------------------------------

from hypothesis import given, strategies as st  # noqa: E402

import pytest  # noqa: E402

from shared.holders import HOLDER_KEY_BYTES, holder_key, same_holder_key  # noqa: E402

_part = st.one_of(st.none(), st.sampled_from(["", "pnoro-1800101221144", "vatro-12433636", "x"]), st.text(max_size=8))
_holders = st.builds(Holder, st.sampled_from(["", "2.5.4.3=dr pop", "2.5.4.3=dr ion", "2.5.4.6=ro"]) | st.text(max_size=8),
                     _part, _part)


@given(_holders, _holders)
def test_the_holder_key_follows_the_same_rule_as_the_holder(presented, registered):
    key = holder_key(presented)
    assert len(key) == HOLDER_KEY_BYTES
    assert same_holder_key(key, holder_key(registered)) == same_holder(presented, registered)


def test_the_holder_key_of_a_renewal_matches_and_of_another_holder_does_not():
    pop = Holder("2.5.4.3=dr pop", "pnoro-1800101221144", None)
    renamed = Holder("2.5.4.3=dr pop-ionescu", "pnoro-1800101221144", None)
    other = Holder("2.5.4.3=dr ion", "pnoro-1800101000000", None)
    assert same_holder_key(holder_key(renamed), holder_key(pop))
    assert not same_holder_key(holder_key(other), holder_key(pop))
    # Nobody named matches nobody, as with the holders themselves.
    assert not same_holder_key(holder_key(Holder("")), holder_key(Holder("")))


def test_a_key_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="24 octets"):
        same_holder_key(b"short", holder_key(Holder("2.5.4.3=dr pop")))


_values = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_names = st.lists(st.tuples(st.sampled_from([NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME,
                                             SN, ORG_ID]), _values), min_size=1, max_size=5)


@given(_names)
def test_the_key_stored_beside_the_json_is_the_key_of_the_json_read_back(pairs):
    # The consumer stores holder_key(holder_of(subject)); a start reading a row stored
    # before the key derives it from the JSON: both must be the one key.
    holder = holder_of(dn(*pairs))
    assert holder_key(Holder.from_json(holder.to_json())) == holder_key(holder)
