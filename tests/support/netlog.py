"""What Chromium's own net log (``--log-net-log``) says the browser tried to reach.

Every request the network service makes is in that log from the browser's start,
whoever asks (a page, the component updater, sign-in, a DNS probe): URLs, host
resolutions, DNS queries, socket connects. This reads the hosts they name, while the
browser is running too (the file is one event per line until Chromium closes it).
"""
from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path
from urllib.parse import urlsplit

# Parameters that name where a request goes; "source_address"/"local_address" (a
# socket's own end) and the cookie store's keys do not.
DESTINATION_KEYS = ("url", "host", "hostname", "qname", "address")
# Events whose address is the socket's own end, not where it goes.
LOCAL_END = frozenset({"UDP_LOCAL_ADDRESS", "TCP_CONNECT_ATTEMPT_LOCAL_ADDRESS"})
SCHEMES = ("http", "https", "ws", "wss", "ftp")
# --host-resolver-rules' "MAP * ~NOTFOUND" shows as this host; the request it stands
# for is in the log under its own URL too.
RULE_PLACEHOLDER = "~notfound"


def events(path: Path) -> list[dict]:
    """The events written so far (a log still being written lacks its closing lines)."""
    found = []
    for line in path.read_text(errors="replace").splitlines()[2:]:
        try:
            event = json.loads(line.rstrip().rstrip(","))
        except ValueError:
            continue
        if isinstance(event, dict) and "type" in event:
            found.append(event)
    return found


def constants(path: Path) -> tuple[dict[int, str], dict[int, str]]:
    """(event type names, source type names) by number, from the log's first line."""
    first = path.read_text(errors="replace").split("\n", 1)[0]
    table = json.loads(first.removeprefix('{"constants":').rstrip().rstrip(","))
    return ({number: name for name, number in table["logEventTypes"].items()},
            {number: name for name, number in table["logSourceType"].items()})


def command_line_of(path: Path) -> list[str]:
    """The browser's command line as the log recorded it (its first line)."""
    first = path.read_text(errors="replace").split("\n", 1)[0]
    table = json.loads(first.removeprefix('{"constants":').rstrip().rstrip(","))
    return shlex.split(table["clientInfo"]["command_line"])


def host_of(value: str) -> str | None:
    value = value.strip()
    if "://" in value:
        parts = urlsplit(value)
        return parts.hostname if parts.scheme in SCHEMES else None
    if value.startswith("["):  # [v6]:port
        return value[1:value.find("]")]
    if value.count(":") == 1:  # host:port, v4:port
        return value.split(":")[0]
    return value or None


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", RULE_PLACEHOLDER):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def silent_udp_sockets(logged: list[dict], types: dict[int, str], sources: dict[int, str]) -> set[int]:
    """UDP sockets that connected but sent nothing. Chromium's IPv6 reachability check
    connects a UDP socket to a public address only to ask the kernel for a route: no
    datagram leaves. A socket that sends (a DNS query, QUIC) is not silent."""
    udp, sent, pairs = set(), set(), []
    for event in logged:
        kind, source = types.get(event["type"], ""), event["source"]["id"]
        if sources.get(event["source"]["type"], "").startswith("UDP_"):
            udp.add(source)
            if kind.startswith("UDP_") and ("SENT" in kind or "SEND" in kind):
                sent.add(source)
            dependency = (event.get("params") or {}).get("source_dependency")
            if kind == "SOCKET_ALIVE" and isinstance(dependency, dict):
                pairs.append((source, dependency.get("id")))
    groups = {source: {source} for source in udp}
    for a, b in pairs:  # a UDP_SOCKET and the UDP_CLIENT_SOCKET that owns it: one socket
        group = groups.get(a, {a}) | groups.get(b, {b})
        for member in group:
            groups[member] = group
    return {source for source in udp if not groups[source] & sent}


def outbound_hosts(path: Path) -> dict[str, set[str]]:
    """Every host other than this machine's loopback that an event names, with the
    event types that named it."""
    if not path.exists():
        return {}
    types, sources = constants(path)
    logged = events(path)
    silent = silent_udp_sockets(logged, types, sources)
    found: dict[str, set[str]] = {}
    for event in logged:
        kind = types.get(event["type"], str(event["type"]))
        if kind.startswith("COOKIE_") or kind in LOCAL_END or event["source"]["id"] in silent:
            continue
        params = event.get("params") or {}
        for key in DESTINATION_KEYS:
            value = params.get(key)
            if isinstance(value, str) and (host := host_of(value)) and not is_loopback(host):
                found.setdefault(host.lower(), set()).add(kind)
    return found
