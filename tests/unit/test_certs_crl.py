"""The CRL rules of the certs service (services/certs/crl.py): which URLs may be asked,
which addresses connected to, what a CRL must be to be believed, when to look again."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from services.certs.crl import (CrlError, address_allowed, check_crl_urls, distribution_points, host_allowed,
                                next_check, read_crl, stale, url_problem)
from shared import errors
from tests.support import pki
from tests.support.crl_authority import CrlAuthority

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("url", ["http://crl.certsign.ro/certsign-qca.crl", "https://x.ro:8443/a.crl",
                                 "http://127.0.0.1:8080/ca.crl", "http://[::1]/ca.crl"])
def test_good_urls(url):
    assert url_problem(url) is None


@pytest.mark.parametrize("url, says", [
    ("ldap://ldap.ro/cn=CA?certificateRevocationList", "http or https"), ("file:///etc/passwd", "http or https"),
    ("http://", "host"), ("http://u:p@x.ro/a.crl", "credentials"), ("http://x.ro/a b.crl", "spaces"),
    ("http://x.ro:99999999/a.crl", "not a valid URL"), ("http://x.ro/" + "a" * 2048, "2048"), ("", "URL"),
])
def test_bad_urls(url, says):
    assert says in url_problem(url)


def test_a_list_of_urls_is_bounded_and_deduplicated():
    assert check_crl_urls(["http://a.ro/x", "http://a.ro/x", " http://b.ro/y "]) == ["http://a.ro/x", "http://b.ro/y"]
    with pytest.raises(errors.Invalid):
        check_crl_urls([f"http://a{i}.ro/x" for i in range(11)])
    with pytest.raises(errors.Invalid) as refused:
        check_crl_urls(["http://a.ro/x", "ftp://b.ro/y"])
    assert set(refused.value.errors) == {"crl_urls[1]"}


def test_hosts_and_addresses():
    assert host_allowed("crl.certsign.ro", ("certsign.ro",)) and host_allowed("certsign.ro.", ("certsign.ro",))
    assert not host_allowed("evilcertsign.ro", ("certsign.ro",)) and host_allowed("anything.ro", ())
    assert address_allowed("193.231.1.1", False)
    assert not address_allowed("127.0.0.1", False) and address_allowed("127.0.0.1", True)
    for private in ("10.0.0.1", "192.168.1.1", "169.254.169.254", "172.16.0.1", "fe80::1%eth0", "::ffff:10.0.0.1",
                    "0.0.0.0", "not an address"):
        assert not address_allowed(private, True), private


def test_distribution_points_are_read_from_the_certificate():
    ca = pki.root_ca("DP CA", now=NOW)
    leaf = pki.client(ca, "leaf", now=NOW,
                      crl_url="http://crl.example.ro/ca.crl")
    assert distribution_points(leaf.cert) == ["http://crl.example.ro/ca.crl"]
    assert distribution_points(pki.client(ca, "no dp", now=NOW).cert) == []


def test_a_crl_is_believed_only_when_the_issuer_signed_it():
    authority = CrlAuthority.new("Signed CRL CA")
    when = authority.revoke(12, x509.ReasonFlags.key_compromise)
    authority.revoke(13, None)
    read = read_crl(authority.crl_der(), authority.authority.der, [12, 13, 14], datetime.now(timezone.utc))
    assert read.revoked == {12: (when, "key_compromise"), 13: (read.revoked[13][0], None)}
    assert read.entries == 2 and read.next_update > read.this_update
    # PEM too.
    pem = x509.load_der_x509_crl(authority.crl_der()).public_bytes(serialization.Encoding.PEM)
    assert 12 in read_crl(pem, authority.authority.der, [12], datetime.now(timezone.utc)).revoked

    with pytest.raises(CrlError, match="signature"):
        read_crl(authority.crl_der(signing_key=pki.new_key()), authority.authority.der, [12], datetime.now(timezone.utc))
    other = CrlAuthority.new("Another CA")
    with pytest.raises(CrlError, match="issued by"):
        read_crl(other.crl_der(), authority.authority.der, [12], datetime.now(timezone.utc))
    with pytest.raises(CrlError, match="not a CRL"):
        read_crl(b"\x30\x03\x02\x01\x00", authority.authority.der, [12], datetime.now(timezone.utc))
    with pytest.raises(CrlError, match="future"):
        read_crl(authority.crl_der(this_update=datetime.now(timezone.utc) + timedelta(hours=1)),
                 authority.authority.der, [12], datetime.now(timezone.utc))


def test_a_delta_crl_is_refused():
    authority = CrlAuthority.new("Delta CA")
    now = datetime.now(timezone.utc)
    delta = (x509.CertificateRevocationListBuilder().issuer_name(authority.authority.cert.subject)
             .last_update(now - timedelta(minutes=1)).next_update(now + timedelta(hours=1))
             .add_extension(x509.DeltaCRLIndicator(1), critical=True)
             .sign(authority.authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    with pytest.raises(CrlError, match="delta"):
        read_crl(delta, authority.authority.der, [1], now)


def test_when_to_look_again():
    bounds = dict(min_interval=timedelta(minutes=5), max_interval=timedelta(hours=6))
    assert next_check(NOW, NOW + timedelta(hours=1), **bounds) == NOW + timedelta(hours=1)
    assert next_check(NOW, NOW - timedelta(hours=1), **bounds) == NOW + timedelta(minutes=5)  # overdue: soon
    assert next_check(NOW, NOW + timedelta(days=7), **bounds) == NOW + timedelta(hours=6)
    assert next_check(NOW, None, **bounds) == NOW + timedelta(hours=6)
    assert stale(NOW - timedelta(seconds=1), NOW) and not stale(NOW + timedelta(seconds=1), NOW)
    assert not stale(None, NOW)
