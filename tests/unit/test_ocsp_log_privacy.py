"""The OCSP log as a house viewer sees it: addresses cut to their network, accounts
without their CUI; admins see it whole."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, strategies as st

from services.ocsp.log.filters import parse_filters
from services.ocsp.log.privacy import HIDDEN, as_seen_by, mask_address, mask_username
from shared import errors
from shared.auth import Principal

VIEWER = Principal("viewer.cj", "CJ", frozenset({"ocsp-log:read"}))
ADMIN = Principal("admin.cj", "CJ", frozenset({"ocsp-log:read", "ocsp-log:personal"}))
ENTRY = {"id": 7, "client": "10.20.30.44", "username": "12433636_CAS-CJ", "serial": "4660", "cas": "CJ"}


def test_a_viewer_sees_the_network_and_the_house_not_the_person():
    seen = as_seen_by(ENTRY, VIEWER)
    assert seen["client"] == "10.20.30.0/24"
    assert seen["username"] == "12****36_CAS-CJ"
    assert (seen["serial"], seen["cas"], seen["id"]) == ("4660", "CJ", 7)
    assert ENTRY["client"] == "10.20.30.44"  # the entry itself is left alone


def test_a_claimed_user_name_in_the_detail_is_masked_too():
    entry = {**ENTRY, "detail": "user_mismatch; claimed 99887766_CAS-CJ"}
    assert as_seen_by(entry, VIEWER)["detail"] == "user_mismatch; claimed 99****66_CAS-CJ"
    assert as_seen_by({**ENTRY, "detail": "heartbeat"}, VIEWER)["detail"] == "heartbeat"
    assert as_seen_by(entry, ADMIN)["detail"] == entry["detail"]


def test_an_admin_sees_everything():
    assert as_seen_by(ENTRY, ADMIN) == ENTRY


@pytest.mark.parametrize(("client", "masked"), [
    ("2001:db8:1234:5678::9", "2001:db8:1234::/48"),
    ("::ffff:192.0.2.77", "192.0.2.0/24"),
    ("proxy.example", HIDDEN),
    ("", HIDDEN),
    (None, None),
])
def test_addresses_of_every_kind(client, masked):
    assert mask_address(client) == masked


@pytest.mark.parametrize(("username", "masked"), [
    ("1234_CAS-B", "***_CAS-B"),
    ("RO12433636_CAS-OPSNAJ", "RO******36_CAS-OPSNAJ"),
    ("someone-typed-this-into-basic", "so************ic"),
    ("x" * 3000, "xx" + "*" * 12 + "xx"),
    (None, None),
])
def test_accounts_of_every_shape(username, masked):
    assert mask_username(username) == masked


@given(st.ip_addresses())
def test_a_masked_address_is_a_network_holding_the_address(address):
    network = ipaddress.ip_network(mask_address(str(address)))
    plain = address.ipv4_mapped if getattr(address, "ipv4_mapped", None) else address
    assert plain in network and network.prefixlen in (24, 48)


@given(st.from_regex(r"[0-9]{6,10}", fullmatch=True), st.sampled_from(["B", "CJ", "IS", "OPSNAJ"]))
def test_the_cui_never_shows_whole(cui, house):
    masked = mask_username(f"{cui}_CAS-{house}")
    assert cui not in masked and masked.endswith(f"_CAS-{house}")


def test_a_viewer_may_not_look_for_one_user():
    with pytest.raises(errors.Forbidden):
        parse_filters({"username": "12433636_CAS-CJ"}, VIEWER)
    assert parse_filters({"username": "12433636_CAS-CJ"}, ADMIN).username == "12433636_CAS-CJ"
    assert parse_filters({"serial": "0x1234"}, VIEWER).serial == "4660"
