"""ocsp settings, read once from the environment and validated before the service starts."""
from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from shared.events import EventDecodeError, parse_time

from shared.config import (SERVICE_PORTS, CommonConfig, ConfigError, service_port, setting, settings_from_env,
                           settle)

from services.ocsp.log.retention import RetentionPolicy, parse_retention

# Ceilings on what an operator may configure: beyond them the setting is a mistake.
MAX_VALIDITY_SECONDS = 7 * 24 * 3600  # RFC 5019 profiles cap OCSP validity at about a week
MAX_AGE_CEILING = 3600
#: CertID hashes answers can be pre-signed for (responder.codec.HASH_SIZES, written here
#: because the responder package imports this module).
PRESIGN_HASHES = ("sha1", "sha256", "sha384", "sha512")


def reuse_port_available() -> bool:
    """Whether several processes can listen on one port (Linux SO_REUSEPORT)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@dataclass(frozen=True)
class Config:
    """ocsp settings. Each field: env var, default (in the field), why.

    port: SIUI_OCSP_PORT, default 8104 (the contract's port).
    tls_port: SIUI_OCSP_TLS_PORT, default 8443: the providers' online channel.
    workers: SIUI_OCSP_WORKERS: processes sharing the ports (SO_REUSEPORT); one per core
        is what the responder needs to use the machine. Forced to 1 where the platform
        cannot share a port.
    responder_cert / responder_key: SIUI_OCSP_RESPONDER_CERT / _KEY, by default in the
        data directory (EC P-256 from deploy/devpki); an RSA pair works too. Signs every
        answer for issuers without a delegated signer.
    pkcs11_module / pkcs11_token / pkcs11_pin_file / pkcs11_key_label:
        SIUI_OCSP_PKCS11_MODULE (the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so),
        SIUI_OCSP_PKCS11_TOKEN (the token's label), SIUI_OCSP_PKCS11_PIN_FILE (a file
        holding the user PIN: never the PIN itself in the environment, where any process
        of the user and every crash report can read it) and SIUI_OCSP_PKCS11_KEY_LABEL:
        with the label set, the responder key is that token's key (it never leaves the
        HSM) and SIUI_OCSP_RESPONDER_KEY is not read. Unset (the default): the key file.
    responder_next_cert / responder_next_key / pkcs11_next_key_label / responder_switch_at:
        SIUI_OCSP_RESPONDER_NEXT_CERT with SIUI_OCSP_RESPONDER_NEXT_KEY (a key file) or
        SIUI_OCSP_PKCS11_NEXT_KEY_LABEL (a key on the same token), and
        SIUI_OCSP_RESPONDER_SWITCH_AT (ISO 8601 with an offset): the responder's next
        identity, published at /v1/responder-next.pem until it signs every answer from
        the switch time on (no restart: every worker switches by itself). Unset: none.
    validity_seconds: SIUI_OCSP_VALIDITY: nextUpdate = thisUpdate + this. Short, because a
        suspension must take effect quickly even for clients that cache until nextUpdate;
        one hour keeps signing work low (answers are cached meanwhile).
    max_age_seconds: SIUI_OCSP_MAX_AGE: GET answers' Cache-Control max-age. HTTP caches may
        reuse an answer this long, so it bounds how stale a cached "good" can be after a
        suspension; the service itself answers from live state.
    max_pending: SIUI_OCSP_MAX_PENDING: answers that may wait to be signed in one process;
        one more is answered ``tryLater`` at once (load shedding: better a quick "ask
        again" than an answer that arrives after the client gave up).
    signing_batch: SIUI_OCSP_SIGNING_BATCH: answers signed in one go before the process
        serves other work again, so a flood of uncachable requests (nonces) cannot
        starve cached answers for long.
    cache_entries: SIUI_OCSP_CACHE_ENTRIES: signed answers kept per process (an LRU; about
        1 kB each with our EC key). 0 disables the cache (benchmarks of live signing).
    cache_bytes: SIUI_OCSP_CACHE_BYTES: and at most this many bytes of them: a delegated
        RSA signer with a chain makes answers several kB, and the bound must hold anyway.
    presign_hashes: SIUI_OCSP_PRESIGN_HASHES: the CertID hash algorithms every registered
        certificate's answer is pre-signed for, comma-separated (default "sha1,sha256":
        OpenSSL's default and what cryptography-based clients send). One elected process
        signs them once per state and again at half their validity; every worker of every
        responder serves those same bytes. Each costs one signature per certificate per
        half-validity and ~0.6 kB per certificate in every worker. Empty: no pre-signing
        (every process signs and caches its own answers, as before issue 14).
    load_timeout: SIUI_OCSP_LOAD_TIMEOUT, default 600 seconds: how long a process may take
        to load its start state (the registry and the pre-signed answers) before it gives up
        and exits (its supervisor starts it again). Nothing is served before that load; at
        national scale (1,000,000 certificates, 2,000,000 answers, ``bench.national``) it
        takes minutes on two cores, where the first default, 60 s, had every start time out.
    log_buffer_entries: SIUI_OCSP_LOG_BUFFER: OCSP log entries a process may hold while
        PostgreSQL catches up (about 270 bytes each, so ~130 MB at most). Sized for a
        10-second burst at 50,000 answers/s, or 100 s of a database outage at 5,000/s;
        beyond it entries are dropped and counted, never answers delayed.
    log_retention_days: SIUI_OCSP_LOG_RETENTION_DAYS: days of OCSP log kept; older day
        partitions are dropped whole, hourly. 90 days answers "who used this certificate
        last quarter", the usual inquiry, and bounds the table (~40 GB at 5,000 answers/s).
    log_retention_by_house: SIUI_OCSP_LOG_RETENTION_BY_HOUSE: groups of houses with a
        retention of their own, e.g. "B,IF=180; CJ=30" (log/retention.py); the others, and
        entries of no house, keep the default.
    tls_cert / tls_key: SIUI_OCSP_TLS_CERT / _KEY, by default in the data directory: the
        online channel's server certificate.
    online_max_inflight: SIUI_ONLINE_MAX_INFLIGHT, default 64: :8443 connections one
        process serves at once, from their handshake to their first answer. Each costs a
        few milliseconds of a core, so an admitted connect waits behind at most 64
        others, not thousands (online/shedding.py: a reconnect storm is absorbed, not
        multiplied).
    online_max_waiting: SIUI_ONLINE_MAX_WAITING, default 2048: connections one process keeps,
        unread, in arrival order for a place (a socket each, no CPU).
    online_max_wait: SIUI_ONLINE_MAX_WAIT, default 8 seconds: a connection that waited longer
        is closed unserved when its turn comes: its desktop (which waits 10 s for an
        answer) has given up or is about to, and serving it would be work for nobody.
        Not less: every connection closed is a desktop backing off for longer.
    online_max_shedding: SIUI_ONLINE_MAX_SHEDDING, default 8: beyond those, connections one
        process answers at once a quick 503 problem+json with Retry-After (after the
        handshake, before anything else); one more is closed at accept, before any
        cryptography. Few: a 503 on a new connection costs a full handshake, and in
        bench.online's storm 32 of them spent more CPU saying "later" than serving.
    online_retry_after: SIUI_ONLINE_RETRY_AFTER, default 10: the longest Retry-After a shed
        connect is told; each is drawn from [half of it, it], so shed desktops return spread.
    online_proxy_protocol: SIUI_ONLINE_PROXY_PROTOCOL, default off: on behind a TCP
        balancer that sends the PROXY protocol (HAProxy's ``send-proxy-v2``,
        deploy/haproxy): every :8443 connection from an address in SIUI_TRUSTED_PROXIES
        must then start with a PROXY header (version 1 or 2), and its source is the
        connection's client for the throttles, the OCSP log and the refusal reports; from
        any other address a PROXY header is refused (shared.http.proxied). Needs
        SIUI_TRUSTED_PROXIES: the balancers themselves.
    online_proxy_header_timeout: SIUI_ONLINE_PROXY_HEADER_TIMEOUT, default 5 seconds: a
        trusted peer whose header is not complete this long after the accept is closed (a
        balancer sends it with its first packet; the TLS handshake's own 10 s come after).
    (common.data_key_path encrypts delegated signers' private keys at rest;
    common.license_pepper_path is the licence pepper keygen hashes keys with.)
    """

    common: CommonConfig
    port: int = SERVICE_PORTS["ocsp"]
    tls_port: int = SERVICE_PORTS["ocsp_tls"]
    workers: int = setting("SIUI_OCSP_WORKERS", 2, minimum=1, maximum=64)
    responder_cert: Path = setting("SIUI_OCSP_RESPONDER_CERT", Path("pki/responder.pem"), data_path=True)
    responder_key: Path = setting("SIUI_OCSP_RESPONDER_KEY", Path("pki/responder.key"), data_path=True)
    validity_seconds: int = setting("SIUI_OCSP_VALIDITY", 3600, minimum=60, maximum=MAX_VALIDITY_SECONDS)
    max_age_seconds: int = setting("SIUI_OCSP_MAX_AGE", 60, minimum=0, maximum=MAX_AGE_CEILING)
    max_pending: int = setting("SIUI_OCSP_MAX_PENDING", 1000, minimum=1)
    signing_batch: int = setting("SIUI_OCSP_SIGNING_BATCH", 64, minimum=1)
    cache_entries: int = setting("SIUI_OCSP_CACHE_ENTRIES", 200_000, minimum=0)
    cache_bytes: int = setting("SIUI_OCSP_CACHE_BYTES", 256 * 1024 * 1024, minimum=1024 * 1024)
    presign_hashes: str = setting("SIUI_OCSP_PRESIGN_HASHES", "sha1,sha256")
    load_timeout: float = setting("SIUI_OCSP_LOAD_TIMEOUT", 600.0, minimum=5, maximum=7200)
    log_buffer_entries: int = setting("SIUI_OCSP_LOG_BUFFER", 500_000, minimum=10_000)
    log_retention_days: int = setting("SIUI_OCSP_LOG_RETENTION_DAYS", 90, minimum=1, maximum=3660)
    log_retention_by_house: str = setting("SIUI_OCSP_LOG_RETENTION_BY_HOUSE", "")
    tls_cert: Path = setting("SIUI_OCSP_TLS_CERT", Path("pki/tls-server.pem"), data_path=True)
    tls_key: Path = setting("SIUI_OCSP_TLS_KEY", Path("pki/tls-server.key"), data_path=True)
    online_max_inflight: int = setting("SIUI_ONLINE_MAX_INFLIGHT", 64, minimum=1, maximum=100_000)
    online_max_waiting: int = setting("SIUI_ONLINE_MAX_WAITING", 2048, minimum=0, maximum=100_000)
    online_max_wait: float = setting("SIUI_ONLINE_MAX_WAIT", 8.0, minimum=0.1, maximum=60)
    online_max_shedding: int = setting("SIUI_ONLINE_MAX_SHEDDING", 8, minimum=0, maximum=100_000)
    online_retry_after: int = setting("SIUI_ONLINE_RETRY_AFTER", 10, minimum=1, maximum=3600)
    online_proxy_protocol: bool = setting("SIUI_ONLINE_PROXY_PROTOCOL", False)
    online_proxy_header_timeout: float = setting("SIUI_ONLINE_PROXY_HEADER_TIMEOUT", 5.0, minimum=0.1, maximum=60)
    pkcs11_module: Path | None = setting("SIUI_OCSP_PKCS11_MODULE", None, data_path=True)
    pkcs11_token: str | None = setting("SIUI_OCSP_PKCS11_TOKEN", None)
    pkcs11_pin_file: Path | None = setting("SIUI_OCSP_PKCS11_PIN_FILE", None, data_path=True)
    pkcs11_key_label: str | None = setting("SIUI_OCSP_PKCS11_KEY_LABEL", None)
    pkcs11_next_key_label: str | None = setting("SIUI_OCSP_PKCS11_NEXT_KEY_LABEL", None)
    responder_next_cert: Path | None = setting("SIUI_OCSP_RESPONDER_NEXT_CERT", None, data_path=True)
    responder_next_key: Path | None = setting("SIUI_OCSP_RESPONDER_NEXT_KEY", None, data_path=True)
    responder_switch_at: str | None = setting("SIUI_OCSP_RESPONDER_SWITCH_AT", None)

    def __post_init__(self) -> None:
        settle(self, self.common.data_dir)
        if self.online_proxy_protocol and not self.common.trusted_proxies:
            raise ConfigError("SIUI_ONLINE_PROXY_PROTOCOL=on needs SIUI_TRUSTED_PROXIES: the balancers whose "
                              "PROXY header is believed")
        if self.max_age_seconds > self.validity_seconds:
            raise ConfigError("SIUI_OCSP_MAX_AGE must be at most SIUI_OCSP_VALIDITY: a cached answer "
                              "must not outlive its nextUpdate")
        try:
            parse_retention(self.log_retention_days, self.log_retention_by_house)
        except ValueError as exc:
            raise ConfigError(f"SIUI_OCSP_LOG_RETENTION_BY_HOUSE {exc}") from None
        unknown = [name for name in self.presign_algorithms if name not in PRESIGN_HASHES]
        if unknown:
            raise ConfigError(f"SIUI_OCSP_PRESIGN_HASHES: unknown hash {', '.join(unknown)} "
                              f"(known: {', '.join(PRESIGN_HASHES)})")
        if (self.pkcs11_key_label or self.pkcs11_next_key_label) and not (
                self.pkcs11_module and self.pkcs11_token and self.pkcs11_pin_file):
            raise ConfigError("a PKCS#11 key label needs SIUI_OCSP_PKCS11_MODULE, SIUI_OCSP_PKCS11_TOKEN "
                              "and SIUI_OCSP_PKCS11_PIN_FILE")
        if self.responder_next_cert is None:
            if self.responder_next_key or self.pkcs11_next_key_label or self.responder_switch_at:
                raise ConfigError("SIUI_OCSP_RESPONDER_NEXT_KEY, SIUI_OCSP_PKCS11_NEXT_KEY_LABEL and "
                                  "SIUI_OCSP_RESPONDER_SWITCH_AT go with SIUI_OCSP_RESPONDER_NEXT_CERT")
            return
        if bool(self.responder_next_key) == bool(self.pkcs11_next_key_label):
            raise ConfigError("SIUI_OCSP_RESPONDER_NEXT_CERT needs its key: SIUI_OCSP_RESPONDER_NEXT_KEY "
                              "(a file) or SIUI_OCSP_PKCS11_NEXT_KEY_LABEL (in the HSM), one of them")
        if not self.responder_switch_at:
            raise ConfigError("SIUI_OCSP_RESPONDER_NEXT_CERT needs SIUI_OCSP_RESPONDER_SWITCH_AT: "
                              "when the next responder certificate starts signing")
        self.switch_time  # parsed now: a malformed time stops the start, not the switch

    @property
    def presign_algorithms(self) -> tuple[str, ...]:
        """SIUI_OCSP_PRESIGN_HASHES as a tuple of names, in the order given, without repeats."""
        names = (name.strip().lower() for name in self.presign_hashes.split(","))
        return tuple(dict.fromkeys(name for name in names if name))

    @property
    def log_retention(self) -> RetentionPolicy:
        """How long the OCSP log is kept, per house group."""
        return parse_retention(self.log_retention_days, self.log_retention_by_house)

    @property
    def switch_time(self) -> datetime | None:
        """SIUI_OCSP_RESPONDER_SWITCH_AT as a moment (None when no next signer is set)."""
        if not self.responder_switch_at:
            return None
        try:
            return parse_time(self.responder_switch_at, "SIUI_OCSP_RESPONDER_SWITCH_AT")
        except EventDecodeError as exc:
            raise ConfigError(f"{exc}; write e.g. 2027-03-01T02:00:00+02:00") from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        config = settings_from_env(cls, env, common=CommonConfig.from_env(env), port=service_port(env, "ocsp"),
                                   tls_port=service_port(env, "ocsp_tls"))
        return config if reuse_port_available() else replace(config, workers=1)
