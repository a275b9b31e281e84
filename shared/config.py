"""Configuration from the environment: the pieces every service's Config is made of.

Each service has one frozen dataclass (``services/<svc>/config.py``) built by
``from_env()``; it is validated once at start so that a typo in a deployment fails
loudly before any request is served.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.addresses import parse_addresses

DEFAULT_DATABASE_URL = "postgresql://siui:siui@127.0.0.1:5432/siui"
# No user: each service logs in as its own broker user (shared.broker.broker_url).
DEFAULT_AMQP_URL = "amqp://127.0.0.1:5672/"
DEFAULT_AMQP_USER_PREFIX = "siui-"
#: SIUI_AMQP_URL may name every node of a cluster; more than this is a typo, not a cluster.
MAX_AMQP_URLS = 16
MAX_URL_CHARS = 2048
#: Hosts in one multi-host SIUI_DATABASE_URL (a primary and its standbys).
MAX_DATABASE_HOSTS = 16
_AMQP_USER_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,32}")


class ConfigError(ValueError):
    """A setting is missing or malformed; raised before the service starts."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


# -- settings declared once: the field holds the variable's name, default and bounds ---------

_SETTING = "siui_setting"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


@dataclass(frozen=True)
class _Spec:
    env: str
    minimum: float | None
    maximum: float | None
    data_path: bool


def setting(env: str, default: Any, *, minimum: float | None = None, maximum: float | None = None,
            data_path: bool = False) -> Any:
    """A config field read from the environment variable ``env``. Its default is written
    here and nowhere else; ``minimum``/``maximum`` bound it; ``data_path`` marks a path
    that, when relative (the defaults), is taken inside ``SIUI_DATA_DIR``."""
    return field(default=default, metadata={_SETTING: _Spec(env, minimum, maximum, data_path)})


def _parse(spec: _Spec, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigError(f"{spec.env} must be true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{spec.env} must be a whole number, got {raw!r}") from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{spec.env} must be a number, got {raw!r}") from None
    if isinstance(default, Path) or default is None and spec.data_path:
        return Path(raw).resolve()  # a path given by the operator is theirs: relative to where they are
    return raw


def settings_from_env(cls, env: Mapping[str, str], **given: Any):
    """``cls(**given)`` with every ``setting`` field that ``given`` lacks read from ``env``
    (its default when the variable is unset or blank)."""
    values = dict(given)
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_SETTING)
        if spec is None or f.name in given:
            continue
        raw = env.get(spec.env, "").strip()
        if raw:
            values[f.name] = _parse(spec, raw, f.default)
    return cls(**values)


def settle(config: Any, data_dir: Path) -> None:
    """For a config's ``__post_init__``: check every setting against its bounds, and put
    relative data paths inside ``data_dir`` (the one place that happens)."""
    for f in dataclasses.fields(config):
        spec = f.metadata.get(_SETTING)
        if spec is None:
            continue
        value = getattr(config, f.name)
        if spec.data_path and isinstance(value, Path) and not value.is_absolute():
            object.__setattr__(config, f.name, data_dir / value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if spec.minimum is not None and value < spec.minimum:
                raise ConfigError(f"{spec.env} must be at least {spec.minimum:g}, got {value}")
            if spec.maximum is not None and value > spec.maximum:
                raise ConfigError(f"{spec.env} must be at most {spec.maximum:g}, got {value}")


@dataclass(frozen=True)
class CommonConfig:
    """Settings every service shares.

    database_url: SIUI_DATABASE_URL; one database, one schema per service. The service
        role: it reads and writes the service's tables, and may only add audit rows.
        Several hosts (``postgresql://u:p@h1:5432,h2:5432/siui?target_session_attrs=
        read-write``) name a primary and its standbys: each new connection goes to the
        one that takes writes now, so after a standby's promotion the services' pools
        refill from it (``database_hosts``; shared.db).
    database_owner_url: SIUI_DATABASE_OWNER_URL (default: SIUI_DATABASE_URL): the owner
        role, which owns the schemas and runs the migrations at start (shared.migrations).
        Two roles, so that what the services connect as cannot edit or delete the audit
        trail; the default keeps a deployment with one role working as before.
    database_read_url: SIUI_DATABASE_READ_URL (default: none, every read on the primary):
        a standby for the heavy listings that tolerate replication lag (users, providers,
        certificates and renewals listed, the expiring counts, the audit trail, the OCSP
        log); never for logins, key checks, tokens, registrations nor a read of one's own
        write (shared.db ``reading``). A setting of its own rather than derived from a
        multi-host SIUI_DATABASE_URL, so that reads move to a standby only where an
        operator chose it (a standby at another site, or one lagging under a report, would
        otherwise take the listings unasked), and so it may name a replica that is no
        failover candidate or a balancer's read port. Several hosts (the same list as
        SIUI_DATABASE_URL) get ``target_session_attrs=prefer-standby``: a standby while
        one answers, the primary otherwise. Its sessions are read-only whatever they
        land on; a standby away or lagging sends the read to the primary (``read_url``).
    database_read_max_lag_seconds: SIUI_DATABASE_READ_MAX_LAG_SECONDS (default 10): a
        standby further behind than this is passed over for the primary (asked at most
        once a second, by the standby's own replay position; shared.db ``LAG_SQL``).
    amqp_url: SIUI_AMQP_URL (default ``amqp://127.0.0.1:5672/``); the RabbitMQ broker
        carrying the events: host, port, virtual host. Several URLs, separated by commas
        or spaces, name the nodes of a cluster (``split_amqp_urls``); kept here joined by
        commas, ``amqp_urls`` is the list. Without a user in it, each service
        logs in as its own broker user with the password the set-up wrote in
        ``<data dir>/secrets/amqp-<service>`` (shared.broker.broker_url).
    data_dir: SIUI_DATA_DIR (default ``.siui``); keys and certificates made by deploy/devpki.
    events_exchange: SIUI_EVENTS_EXCHANGE (default ``siui.events``); tests use their own
        exchange so that parallel runs on one broker never see each other's events.
    host: SIUI_HOST (default 127.0.0.1); containers set 0.0.0.0.
    log_format: SIUI_LOG_FORMAT, ``json`` (default) or ``console``.
    users_url: SIUI_USERS_URL (default http://127.0.0.1:<SIUI_USERS_PORT or 8102>): where
        services read the ended sessions when they start (see shared.service).
    license_pepper_path: SIUI_LICENSE_PEPPER_FILE (formerly SIUI_KEYGEN_PEPPER_FILE, still
        read), default ``<data dir>/secrets/license-pepper``: the HMAC key under which
        licence serials are stored. keygen hashes new keys with it and ocsp checks
        presented ones with it, so it is one setting for both, never two.
    trusted_proxies: SIUI_TRUSTED_PROXIES (formerly SIUI_KEYGEN_TRUSTED_PROXIES, still
        read), default none: addresses of the reverse proxies whose X-Forwarded-For is
        believed (shared.addresses). Behind a proxy every client would otherwise share
        its address, and one typo-prone clinic would lock out all.
    audit_retention_days: SIUI_AUDIT_RETENTION_DAYS: how long each service keeps its audit
        rows (a year and a month: an inquiry about last year's operations still finds
        them); older rows are deleted in batches every hour, the oldest first, so the
        rest of the audit chain still verifies (shared.audit_chain).
    audit_checkpoint_seconds: SIUI_AUDIT_CHECKPOINT_SECONDS (default 300): how often each
        service logs its audit chain's head (``audit_chain_head``: service, seq, hash), so
        that the log store, out of the database's reach, holds checkpoints a rewritten or
        cut chain no longer passes through (``deploy.verify_audit --expect``).
    inbox_retention_days: SIUI_INBOX_RETENTION_DAYS (default 30): how long a consumed
        event's id is remembered (``shared.inbox``), which is how long a redelivery or a
        replay of it is recognised and not applied twice. Longer than any redelivery
        window: a message is redelivered only while unacknowledged (a consumer down for
        days), and a dead-lettered one should be replayed within the month. Handlers are
        idempotent by their own keys too, so an older repeat is still harmless.
    amqp_user_prefix: SIUI_AMQP_USER_PREFIX (default ``siui-``): the broker users are
        ``<prefix><service>`` (siui-keygen, siui-users, siui-certs, siui-ocsp,
        siui-console). The one naming rule for both sides: a service logs in and stamps
        its events with its name, a consumer expects the publisher's name (shared.broker
        .PUBLISHERS); a deployment changes the names only through this prefix.
    """

    database_url: str
    amqp_url: str
    data_dir: Path
    events_exchange: str
    host: str
    log_format: str
    users_url: str = "http://127.0.0.1:8102"
    license_pepper_path: Path | None = None  # None: <data dir>/secrets/license-pepper
    trusted_proxies: frozenset[str] = frozenset()
    audit_retention_days: int = setting("SIUI_AUDIT_RETENTION_DAYS", 400, minimum=30, maximum=36_600)
    inbox_retention_days: int = setting("SIUI_INBOX_RETENTION_DAYS", 30, minimum=7, maximum=3_660)
    amqp_user_prefix: str = DEFAULT_AMQP_USER_PREFIX
    database_owner_url: str | None = None  # None: database_url
    audit_checkpoint_seconds: float = setting("SIUI_AUDIT_CHECKPOINT_SECONDS", 300.0, minimum=1, maximum=86_400)
    database_read_url: str | None = None  # None: every read on the primary
    database_read_max_lag_seconds: float = setting("SIUI_DATABASE_READ_MAX_LAG_SECONDS", 10.0,
                                                   minimum=0, maximum=3_600)

    def __post_init__(self) -> None:
        settle(self, self.data_dir)
        if self.database_owner_url is None:
            object.__setattr__(self, "database_owner_url", self.database_url)
        if self.license_pepper_path is None:
            object.__setattr__(self, "license_pepper_path", self.data_dir / "secrets" / "license-pepper")

    @property
    def amqp_urls(self) -> list[str]:
        """SIUI_AMQP_URL's nodes, in the order given."""
        return split_amqp_urls(self.amqp_url)

    def data_path(self, relative: str | Path) -> Path:
        """A path inside the data directory."""
        return self.data_dir / relative

    @property
    def metrics_token_path(self) -> Path:
        """The bearer token ``GET /metrics`` asks for (per-house counters are not public)."""
        return self.data_dir / "secrets" / "metrics-token"

    @property
    def token_public_key_path(self) -> Path:
        return self.data_dir / "secrets" / "token-signing.pub.pem"

    @property
    def data_key_path(self) -> Path:
        """The deployment's AES-256 key (64 hex chars): private keys at rest are encrypted
        with it, and other keys (console cookies, online sessions) derived from it by HKDF."""
        return self.data_dir / "secrets" / "data-key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "CommonConfig":
        return settings_from_env(cls, os.environ if env is None else env, **cls._given(env))

    @classmethod
    def _given(cls, env: Mapping[str, str] | None) -> dict[str, Any]:
        env = os.environ if env is None else env
        log_format = env_str(env, "SIUI_LOG_FORMAT", "json")
        if log_format not in ("json", "console"):
            raise ConfigError("SIUI_LOG_FORMAT must be 'json' or 'console'")
        database_url = env_str(env, "SIUI_DATABASE_URL", DEFAULT_DATABASE_URL)
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("SIUI_DATABASE_URL must be a postgresql:// DSN")
        if len(database_url) > MAX_URL_CHARS:
            raise ConfigError(f"SIUI_DATABASE_URL is longer than {MAX_URL_CHARS} characters")
        database_url = writable(database_url)
        owner_url = env_str(env, "SIUI_DATABASE_OWNER_URL", database_url)
        if not owner_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("SIUI_DATABASE_OWNER_URL must be a postgresql:// DSN")
        owner_url = writable(owner_url)
        if _database_of(owner_url) != _database_of(database_url):
            # A test or a script that changed only SIUI_DATABASE_URL would otherwise
            # migrate one database and serve from another.
            raise ConfigError("SIUI_DATABASE_OWNER_URL must name the database of SIUI_DATABASE_URL "
                              f"(host, port, name): {_database_of(owner_url)} vs {_database_of(database_url)}")
        read_url = env_str(env, "SIUI_DATABASE_READ_URL", "") or None
        if read_url is not None:
            read_url = read_only_url(read_url, database_url)
        amqp_url = ",".join(split_amqp_urls(env_str(env, "SIUI_AMQP_URL", DEFAULT_AMQP_URL)))
        return dict(
            database_url=database_url,
            database_owner_url=owner_url,
            database_read_url=read_url,
            amqp_url=amqp_url,
            data_dir=Path(env_str(env, "SIUI_DATA_DIR", ".siui")).resolve(),
            events_exchange=env_str(env, "SIUI_EVENTS_EXCHANGE", "siui.events"),
            host=env_str(env, "SIUI_HOST", "127.0.0.1"),
            log_format=log_format,
            users_url=service_url(env, "users"),
            license_pepper_path=_pepper_path(env),
            trusted_proxies=_trusted_proxies(env),
            amqp_user_prefix=_amqp_user_prefix(env),
        )


def _database_of(dsn: str) -> tuple[frozenset[tuple[str, int]], str]:
    return frozenset(database_hosts(dsn)), parse_dsn(dsn).database


@dataclass(frozen=True)
class Dsn:
    """A postgresql:// DSN's parts, split by hand: urllib's ``urlsplit`` refuses a
    multi-host address with a bracketed IPv6 host after another one
    (``h1:5432,[fd00::1]:5434``: its check for bracketed hosts, in Debian's Python 3.11
    and in 3.12+), and reads no port of such an address anyway."""

    netloc: str    # user:password@h1:5432,h2:5433
    database: str
    query: str

    @property
    def user(self) -> str | None:
        userinfo, at, _ = self.netloc.rpartition("@")
        return (unquote(userinfo.partition(":")[0]) or None) if at else None


def parse_dsn(dsn: str) -> Dsn:
    rest = dsn.partition("://")[2].partition("#")[0]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    return Dsn(netloc, path, query)


def database_hosts(dsn: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a postgresql:// DSN, in order: one, or several for a
    primary with its standbys (``postgresql://u:p@h1:5432,h2:5433/db``, libpq's and
    asyncpg's multi-host form; a host without a port takes 5432). Raises ConfigError on
    a malformed list. Only the URL's own hosts are read: a ``?host=`` parameter is not
    supported (one way to write it, checked here)."""
    parts = parse_dsn(dsn)
    if "host=" in parts.query or "port=" in parts.query:
        raise ConfigError("write the database hosts in the URL (postgresql://u:p@h1:5432,h2:5432/db), "
                          "not as ?host= or ?port= parameters")
    address = parts.netloc.rpartition("@")[2]
    if not address:
        raise ConfigError("the database URL names no host")
    pieces = address.split(",")
    if len(pieces) > MAX_DATABASE_HOSTS:
        raise ConfigError(f"the database URL names {len(pieces)} hosts; at most {MAX_DATABASE_HOSTS}")
    hosts = []
    for piece in pieces:
        if piece.startswith("["):  # [IPv6]:port
            host, _, rest = piece[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        else:
            host, _, port_text = piece.partition(":")
        if not host:
            raise ConfigError(f"the database URL has an empty host in {address!r}")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise ConfigError(f"the database URL has a bad port {port_text!r} in {address!r}")
        hosts.append((host, int(port_text) if port_text else 5432))
    return hosts


def writable(dsn: str) -> str:
    """``dsn``, with ``target_session_attrs=read-write`` added when it names several hosts
    and no target_session_attrs: every service writes, and listens (NOTIFY reaches only
    the primary's listeners), so with a primary and standbys listed it must land on the
    primary, whichever host that is now; asyncpg's default (``any``) would take the first
    that answers, a standby as readily. One host: left as it is."""
    if len(database_hosts(dsn)) < 2 or "target_session_attrs=" in parse_dsn(dsn).query:
        return dsn
    return dsn + ("&" if parse_dsn(dsn).query else "?") + "target_session_attrs=read-write"


def read_only_url(dsn: str, database_url: str) -> str:
    """SIUI_DATABASE_READ_URL checked: a postgresql:// DSN, bounded, naming the database
    of ``database_url`` (a standby of another database would list someone else's rows);
    with several hosts and no target_session_attrs, ``prefer-standby`` added (asyncpg's
    default, ``any``, would as readily take the primary first). Raises ConfigError."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        raise ConfigError("SIUI_DATABASE_READ_URL must be a postgresql:// DSN")
    if len(dsn) > MAX_URL_CHARS:
        raise ConfigError(f"SIUI_DATABASE_READ_URL is longer than {MAX_URL_CHARS} characters")
    if parse_dsn(dsn).database != parse_dsn(database_url).database:
        raise ConfigError("SIUI_DATABASE_READ_URL must name the database of SIUI_DATABASE_URL")
    if len(database_hosts(dsn)) < 2 or "target_session_attrs=" in parse_dsn(dsn).query:
        return dsn
    return dsn + ("&" if parse_dsn(dsn).query else "?") + "target_session_attrs=prefer-standby"


def split_amqp_urls(value: str) -> list[str]:
    """SIUI_AMQP_URL as a list: one URL, or every node of a cluster separated by commas
    or spaces (``amqp://n1:5672/,amqp://n2:5672/``). A service connects to the first one
    that answers and moves to the next when its node goes (shared.broker). Every URL must
    name the same virtual host and the same user (or none): they are one broker seen
    through several doors. Raises ConfigError."""
    urls = [u for u in re.split(r"[,\s]+", value.strip()) if u]
    if not urls:
        raise ConfigError("SIUI_AMQP_URL is empty")
    if len(urls) > MAX_AMQP_URLS:
        raise ConfigError(f"SIUI_AMQP_URL names {len(urls)} URLs; at most {MAX_AMQP_URLS}")
    seen = set()
    for url in urls:
        if len(url) > MAX_URL_CHARS:
            raise ConfigError(f"SIUI_AMQP_URL: a URL longer than {MAX_URL_CHARS} characters")
        if not url.startswith(("amqp://", "amqps://")):
            raise ConfigError("SIUI_AMQP_URL must be amqp:// URLs (several: separated by commas or spaces)")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"SIUI_AMQP_URL: a bad port in {_without_password(url)!r}") from None
        if not parts.hostname:
            raise ConfigError(f"SIUI_AMQP_URL: no host in {_without_password(url)!r}")
        seen.add((parts.path.lstrip("/") or "/", parts.username))
    if len(seen) > 1:
        raise ConfigError("SIUI_AMQP_URL: every URL must name the same virtual host and user "
                          "(the nodes of one cluster)")
    return urls


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    return url if parts.password is None else url.replace(f":{parts.password}@", ":***@", 1)


SERVICE_PORTS = {"console": 8100, "keygen": 8101, "users": 8102, "certs": 8103, "ocsp": 8104,
                 "ocsp_tls": 8443}


def service_port(env: Mapping[str, str], service: str) -> int:
    """SIUI_<SERVICE>_PORT, defaulting to the contract's port for that service."""
    return env_int(env, f"SIUI_{service.upper()}_PORT", SERVICE_PORTS[service], minimum=1)


def service_url(env: Mapping[str, str], service: str) -> str:
    """SIUI_<SERVICE>_URL: where other services reach it (default: 127.0.0.1 and its port)."""
    return env_str(env, f"SIUI_{service.upper()}_URL",
                   f"http://127.0.0.1:{service_port(env, service)}").rstrip("/")


def _pepper_path(env: Mapping[str, str]) -> Path | None:
    raw = env_str(env, "SIUI_LICENSE_PEPPER_FILE", "") or env_str(env, "SIUI_KEYGEN_PEPPER_FILE", "")
    return Path(raw).resolve() if raw else None


def _trusted_proxies(env: Mapping[str, str]) -> frozenset[str]:
    name = "SIUI_TRUSTED_PROXIES" if env_str(env, "SIUI_TRUSTED_PROXIES", "") else "SIUI_KEYGEN_TRUSTED_PROXIES"
    try:
        return parse_addresses(env_str(env, name, ""))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _amqp_user_prefix(env: Mapping[str, str]) -> str:
    value = env_str(env, "SIUI_AMQP_USER_PREFIX", DEFAULT_AMQP_USER_PREFIX)
    if not _AMQP_USER_PREFIX.fullmatch(value):
        raise ConfigError(f"SIUI_AMQP_USER_PREFIX must be 1 to 32 of A-Z a-z 0-9 . _ -, got {value[:40]!r}")
    return value
