"""DNs in the seed's spelling, and matching however a person types them."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from services.certs.x509names import DNSyntaxError, dn_key, format_dn, format_name, name_key, parse_dn

SEED = "C=RO, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA"
CERTSIGN = "C=RO, O=CERTSIGN SA, CN=CERTSIGN QUALIFIED 2023 RSA CA, 2.5.4.97=VATRO-18288250"


def name(*pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def test_a_certificate_name_is_written_in_encoded_order_as_the_seed_does():
    seed = name((NameOID.COUNTRY_NAME, "RO"), (NameOID.STATE_OR_PROVINCE_NAME, "ROMANIA"),
                (NameOID.LOCALITY_NAME, "BUCURESTI"), (NameOID.ORGANIZATION_NAME, "MINISTERUL SANATATII"),
                (NameOID.COMMON_NAME, "MSANATATII CA"))
    assert format_name(seed) == SEED
    # RFC 4514 writes the same name the other way round.
    assert seed.rfc4514_string() == ",".join(reversed(SEED.split(", ")))


def test_organization_identifier_is_written_by_its_oid_and_round_trips():
    certsign = name((NameOID.COUNTRY_NAME, "RO"), (NameOID.ORGANIZATION_NAME, "CERTSIGN SA"),
                    (NameOID.COMMON_NAME, "CERTSIGN QUALIFIED 2023 RSA CA"),
                    (ObjectIdentifier("2.5.4.97"), "VATRO-18288250"))
    assert format_name(certsign) == CERTSIGN
    assert format_dn(parse_dn(CERTSIGN)) == CERTSIGN
    assert dn_key(parse_dn(CERTSIGN)) == name_key(certsign)


@pytest.mark.parametrize("typed", [
    SEED,
    "CN=MSANATATII CA,O=MINISTERUL SANATATII,L=BUCURESTI,ST=ROMANIA,C=RO",
    "c=ro; st=romania; l=bucuresti; o=ministerul   sanatatii; cn=msanatatii ca",
    "  countryName = RO ,stateOrProvinceName=ROMANIA,localityName=BUCURESTI, "
    "organizationName=\"MINISTERUL SANATATII\", commonName=MSANATATII CA ",
    "OID.2.5.4.6=RO, 2.5.4.8=ROMANIA, L=BUCURESTI, O=MINISTERUL SANATATII, CN=MSANATATII CA",
    "C=#1302524F, ST=ROMANIA, L=BUCURESTI, O=MINISTERUL\\20SANATATII, CN=MSANATATII CA",
])
def test_every_spelling_of_the_seed_dn_has_one_key(typed):
    assert dn_key(parse_dn(typed)) == dn_key(parse_dn(SEED))


def test_different_names_have_different_keys():
    assert dn_key(parse_dn("CN=A, O=B")) != dn_key(parse_dn("CN=B, O=A"))
    assert dn_key(parse_dn("CN=A, OU=X, OU=Y")) != dn_key(parse_dn("CN=A, OU=X"))
    # Diacritics are part of the name.
    assert dn_key(parse_dn("L=Bucureşti")) != dn_key(parse_dn("L=Bucuresti"))


def test_special_characters_are_escaped_and_read_back():
    tricky = name((NameOID.ORGANIZATION_NAME, 'SC "ALFA, BETA" + CO; <X>'),
                  (NameOID.COMMON_NAME, " lead and trail "), (NameOID.LOCALITY_NAME, "#1"))
    written = format_name(tricky)
    assert written == 'O=SC \\"ALFA\\, BETA\\" \\+ CO\\; \\<X\\>, CN=\\ lead and trail\\ , L=\\#1'
    assert parse_dn(written) == [(("2.5.4.10", 'SC "ALFA, BETA" + CO; <X>'),), (("2.5.4.3", " lead and trail "),),
                                 (("2.5.4.7", "#1"),)]


def test_multi_valued_rdns_and_utf8_escapes():
    assert parse_dn("CN=Ion+UID=42, C=RO") == [(("2.5.4.3", "Ion"), ("0.9.2342.19200300.100.1.1", "42")),
                                               (("2.5.4.6", "RO"),)]
    assert format_dn(parse_dn("CN=Ion+UID=42, C=RO")) == "CN=Ion+UID=42, C=RO"
    assert parse_dn("L=Bucure\\C8\\99ti") == [(("2.5.4.7", "București"),)]


@pytest.mark.parametrize("bad", ["", "   ", "CN", "CN=", "XYZ=1", "=RO", "CN=a,", 'CN="open', "CN=a\\",
                                 "C=#ZZ", "CN=\\ff"])
def test_unreadable_dns_say_why(bad):
    with pytest.raises(DNSyntaxError):
        parse_dn(bad)
