"""ocsp settings, read once from the environment and validated before the service starts."""
from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.config import CommonConfig, ConfigError, env_int, env_str, service_port

# Ceilings on what an operator may configure: beyond them the setting is a mistake.
MAX_VALIDITY_SECONDS = 7 * 24 * 3600  # RFC 5019 profiles cap OCSP validity at about a week
MAX_AGE_CEILING = 3600


def reuse_port_available() -> bool:
    """Whether several processes can listen on one port (Linux SO_REUSEPORT)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@dataclass(frozen=True)
class Config:
    """ocsp settings. Each field: env var, default, why.

    port: SIUI_OCSP_PORT, default 8104 (the contract's port).
    tls_port: SIUI_OCSP_TLS_PORT, default 8443: the providers' online channel.
    workers: SIUI_OCSP_WORKERS, default 2: processes sharing the ports (SO_REUSEPORT);
        one per core is what the responder needs to use the machine. Forced to 1 where
        the platform cannot share a port.
    responder_cert / responder_key: SIUI_OCSP_RESPONDER_CERT / _KEY, default
        ``<data dir>/pki/responder.pem`` / ``.key`` (EC P-256 from deploy/devpki); an RSA
        pair works too. Signs every answer for issuers without a delegated signer.
    validity_seconds: SIUI_OCSP_VALIDITY, default 3600: nextUpdate = thisUpdate + this.
        Short, because a suspension must take effect quickly even for clients that cache
        until nextUpdate; one hour keeps signing work low (answers are cached meanwhile).
    max_age_seconds: SIUI_OCSP_MAX_AGE, default 60: GET answers' Cache-Control max-age.
        HTTP caches may reuse an answer this long, so it bounds how stale a cached
        "good" can be after a suspension; the service itself answers from live state.
    max_pending: SIUI_OCSP_MAX_PENDING, default 1000: answers that may wait to be signed
        in one process; one more is answered ``tryLater`` at once (load shedding: better
        a quick "ask again" than an answer that arrives after the client gave up).
    signing_batch: SIUI_OCSP_SIGNING_BATCH, default 64: answers signed in one go before
        the process serves other work again, so a flood of uncachable requests (nonces)
        cannot starve cached answers for long.
    cache_entries: SIUI_OCSP_CACHE_ENTRIES, default 200000: signed answers kept per
        process (an LRU; about 1 kB each). 0 disables the cache (benchmarks of live signing).
    log_buffer_entries: SIUI_OCSP_LOG_BUFFER, default 500000: OCSP log entries a process
        may hold while PostgreSQL catches up (about 270 bytes each, so ~130 MB at most).
        Sized for a 10-second burst at 50,000 answers/s, or 100 s of a database outage at
        5,000/s; beyond it entries are dropped and counted, never answers delayed.
    (common.data_key_path, ``<data dir>/secrets/data-key``, encrypts delegated signers'
    private keys at rest.)
    tls_cert / tls_key: SIUI_OCSP_TLS_CERT / _KEY, default ``<data dir>/pki/tls-server.pem``
        / ``.key``: the online channel's server certificate.
    """

    common: CommonConfig
    port: int
    tls_port: int = 8443
    workers: int = 2
    responder_cert: Path = Path(".siui/pki/responder.pem")
    responder_key: Path = Path(".siui/pki/responder.key")
    validity_seconds: int = 3600
    max_age_seconds: int = 60
    max_pending: int = 1000
    signing_batch: int = 64
    cache_entries: int = 200_000
    log_buffer_entries: int = 500_000
    tls_cert: Path = Path(".siui/pki/tls-server.pem")
    tls_key: Path = Path(".siui/pki/tls-server.key")


    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        common = CommonConfig.from_env(env)
        pki = common.data_dir / "pki"
        validity = env_int(env, "SIUI_OCSP_VALIDITY", 3600, minimum=60)
        if validity > MAX_VALIDITY_SECONDS:
            raise ConfigError(f"SIUI_OCSP_VALIDITY must be at most {MAX_VALIDITY_SECONDS} seconds")
        max_age = env_int(env, "SIUI_OCSP_MAX_AGE", 60, minimum=0)
        if max_age > min(validity, MAX_AGE_CEILING):
            raise ConfigError("SIUI_OCSP_MAX_AGE must be at most SIUI_OCSP_VALIDITY and at most 3600: "
                              "a suspension must reach clients quickly")
        workers = env_int(env, "SIUI_OCSP_WORKERS", 2, minimum=1)
        return cls(
            common=common,
            port=service_port(env, "ocsp"),
            tls_port=service_port(env, "ocsp_tls"),
            workers=workers if reuse_port_available() else 1,
            responder_cert=Path(env_str(env, "SIUI_OCSP_RESPONDER_CERT", str(pki / "responder.pem"))),
            responder_key=Path(env_str(env, "SIUI_OCSP_RESPONDER_KEY", str(pki / "responder.key"))),
            validity_seconds=validity,
            max_age_seconds=max_age,
            max_pending=env_int(env, "SIUI_OCSP_MAX_PENDING", 1000, minimum=1),
            signing_batch=env_int(env, "SIUI_OCSP_SIGNING_BATCH", 64, minimum=1),
            cache_entries=env_int(env, "SIUI_OCSP_CACHE_ENTRIES", 200_000, minimum=0),
            log_buffer_entries=env_int(env, "SIUI_OCSP_LOG_BUFFER", 500_000, minimum=10_000),
            tls_cert=Path(env_str(env, "SIUI_OCSP_TLS_CERT", str(pki / "tls-server.pem"))),
            tls_key=Path(env_str(env, "SIUI_OCSP_TLS_KEY", str(pki / "tls-server.key"))),
        )

    @classmethod
    def for_tests(cls, common: CommonConfig, **changes) -> "Config":
        """A config rooted in ``common.data_dir`` with the defaults above (tests, benchmarks)."""
        pki = common.data_dir / "pki"
        values = dict(common=common, port=0, tls_port=0, workers=1,
                      responder_cert=pki / "responder.pem", responder_key=pki / "responder.key",
                      tls_cert=pki / "tls-server.pem", tls_key=pki / "tls-server.key")
        values.update(changes)
        return cls(**values)
