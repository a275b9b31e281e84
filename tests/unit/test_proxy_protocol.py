"""The PROXY protocol header parser (shared.http.proxy_protocol): what HAProxy sends is
read, anything else refused as early as it shows, and never more than the bound looked at."""
from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.proxy_protocol import (MAX_HEADER, MAX_V1, MAX_V2_PAYLOAD, ProxyHeader, ProxyHeaderError,
                                        looks_like_header, parse_header)
from tests.support.proxy_header import SIGNATURE, v1, v2

TLS_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def refused(data: bytes) -> str:
    with pytest.raises(ProxyHeaderError) as caught:
        parse_header(data)
    return caught.value.reason


@pytest.mark.parametrize("header, source", [
    (v2(("203.0.113.7", 40000)), ("203.0.113.7", 40000)),
    (v2(("2001:db8::7", 1)), ("2001:db8::7", 1)),
    (v1(("203.0.113.7", 40000)), ("203.0.113.7", 40000)),
    (v1(("2001:db8::7", 65535)), ("2001:db8::7", 65535)),
    (b"PROXY TCP6 ::ffff:203.0.113.7 ::1 5 6\r\n", ("203.0.113.7", 5)),  # a dual-stack balancer's IPv4 client
])
def test_the_source_of_a_balancers_header(header, source):
    parsed = parse_header(header + TLS_HELLO)
    assert parsed.source == source and parsed.length == len(header)


def test_v2_with_tlvs_skips_them():
    tlvs = bytes([0x05, 0x00, 0x03]) + b"abc" + bytes([0x04, 0x00, 0x00])  # unique id, a NOOP
    header = v2(("192.0.2.1", 2), tlvs=tlvs)
    assert parse_header(header + TLS_HELLO) == ProxyHeader(2, len(header), ("192.0.2.1", 2), ("127.0.0.1", 8443))


@pytest.mark.parametrize("header", [
    v2(("192.0.2.1", 2), local=True),     # HAProxy's own health check
    v2(None, local=True),
    v2(None),                             # PROXY, UNSPEC family
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n",
    SIGNATURE + bytes([0x21, 0x31]) + struct.pack(">H", 216) + bytes(216),  # a unix socket
])
def test_a_header_naming_no_client_leaves_the_connection_the_peers(header):
    parsed = parse_header(header)
    assert parsed.source is None and parsed.length == len(header)


@pytest.mark.parametrize("header", [v2(("203.0.113.7", 40000)), v1(("203.0.113.7", 40000)),
                                    v2(("2001:db8::1", 9), tlvs=b"\x01\x00\x02h2")])
def test_every_prefix_of_a_header_asks_for_more(header):
    for end in range(len(header)):
        assert parse_header(header[:end]) is None, end
        assert looks_like_header(header[:end]) or end == 0


def test_tls_or_http_without_a_header_is_missing_at_the_first_byte():
    assert refused(TLS_HELLO[:1]) == "missing"
    assert refused(b"GET / HTTP/1.1\r\n") == "missing"
    assert not looks_like_header(TLS_HELLO) and not looks_like_header(b"POST /v1/online/connect")


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 203.0.113.07 10.0.0.1 1 2\r\n",    # leading zero
    b"PROXY TCP4 203.0.113.7 10.0.0.1 01 2\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 1 65536\r\n",
    b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",     # the wrong family
    b"PROXY TCP6 203.0.113.7 ::1 1 2\r\n",
    b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    b"PROXY TCP4  203.0.113.7 10.0.0.1 1 2\r\n",    # two spaces
    b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2 3\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 1\r\n",
    b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
    b"PROXY UNKNOWNX\r\n",
    b"PROXY tcp4 203.0.113.7 10.0.0.1 1 2\r\n",
    b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2\n",       # LF alone
    b"PROXY TCP4 203.0.113.7\x0010.0.0.1 1 2\r\n",
])
def test_a_v1_line_out_of_its_grammar_is_malformed(line):
    assert refused(line) == "malformed"


def test_control_bytes_in_a_v1_line_are_refused_before_its_end():
    assert refused(b"PROXY TCP4 1.2.3.4\n") == "malformed"
    assert refused(b"PROXY \x16") == "malformed"


def test_a_v1_line_without_crlf_within_107_bytes_is_too_long():
    line = b"PROXY UNKNOWN " + b"x" * (MAX_V1 - 14)
    assert len(line) == MAX_V1 and refused(line) == "too_long"
    assert parse_header(line[:-1]) is None                      # 106 bytes: may still end
    assert parse_header(line[:-2] + b"\r\n").length == MAX_V1   # exactly 107 with its CRLF


@pytest.mark.parametrize("fixed", [
    bytes([0x11, 0x11]) + struct.pack(">H", 12),   # version 1 in a v2 header
    bytes([0x22, 0x11]) + struct.pack(">H", 12),   # command 2
    bytes([0x21, 0x12]) + struct.pack(">H", 12),   # a datagram
    bytes([0x21, 0x41]) + struct.pack(">H", 12),   # family 4
    bytes([0x21, 0x11]) + struct.pack(">H", 11),   # an IPv4 block cut short
    bytes([0x21, 0x21]) + struct.pack(">H", 12),   # IPv6 needs 36
])
def test_a_v2_header_out_of_the_specification_is_malformed(fixed):
    assert refused(SIGNATURE + fixed + bytes(64)) == "malformed"


def test_v2_version_and_command_are_refused_as_soon_as_they_arrive():
    assert refused(SIGNATURE + b"\x31") == "malformed"


def test_v2_tlvs_must_fill_the_header_exactly():
    assert refused(v2(("192.0.2.1", 2), tlvs=b"\x05\x00")) == "malformed"          # cut in its length
    assert refused(v2(("192.0.2.1", 2), tlvs=b"\x05\x00\x09abc")) == "malformed"   # longer than the rest


def test_a_v2_length_beyond_the_bound_is_refused_before_its_bytes_come():
    fixed = SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", MAX_V2_PAYLOAD + 1)
    assert refused(fixed) == "too_long"
    longest = SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", MAX_V2_PAYLOAD) + bytes(12)
    assert parse_header(longest) is None
    tlv = bytes([0x04]) + struct.pack(">H", MAX_V2_PAYLOAD - 12 - 3) + bytes(MAX_V2_PAYLOAD - 12 - 3)
    assert parse_header(longest + tlv).length == 16 + MAX_V2_PAYLOAD


# -- fuzz: nothing but the module's error, nothing past the bound ------------------------------

def _outcome(data: bytes):
    try:
        return parse_header(data)
    except ProxyHeaderError as exc:
        assert exc.reason in ("missing", "malformed", "too_long")
        return ("refused", exc.reason)


starts = st.sampled_from([b"", SIGNATURE, SIGNATURE + b"\x21\x11", SIGNATURE + b"\x20", b"PROXY ",
                          b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN", v2(("192.0.2.1", 1))[:16]])
fuzzed = st.builds(lambda start, rest: start + rest, starts, st.binary(max_size=MAX_HEADER + 64))


@settings(max_examples=3000, deadline=None)
@given(fuzzed)
def test_any_bytes_give_a_header_more_please_or_the_modules_error(data):
    outcome = _outcome(data)
    if isinstance(outcome, ProxyHeader):
        assert 0 < outcome.length <= min(len(data), MAX_HEADER)
    if outcome is None:  # waiting for more is only possible below the bound
        assert len(data) < MAX_HEADER


@settings(max_examples=2000, deadline=None)
@given(fuzzed, st.binary(min_size=1, max_size=2048))
def test_nothing_past_the_bound_or_past_a_decision_is_read(data, more):
    outcome = _outcome(data)
    if len(data) >= MAX_HEADER:  # bytes beyond the bound are never looked at
        assert _outcome(data[:MAX_HEADER] + more) == outcome
    if outcome is not None:  # decided: what follows changes nothing
        assert _outcome(data + more) == outcome


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 65535)),
    st.tuples(st.ip_addresses(v=6).map(str), st.integers(0, 65535))),
    st.booleans(), st.binary(max_size=64))
def test_what_a_balancer_writes_reads_back(source, version_two, following):
    header = v2(source) if version_two else v1(source)
    parsed = parse_header(header + following)
    expected = ipaddress.ip_address(source[0])
    expected = str(getattr(expected, "ipv4_mapped", None) or expected)
    assert parsed.source == (expected, source[1]) and parsed.length == len(header)
