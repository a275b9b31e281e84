"""The broker's set-up: one RabbitMQ user per service, least-privilege permissions, the topology.

``python -m deploy.broker plan`` is what deploy/setup.sh runs: it reads the broker's
definitions (``rabbitmqctl export_definitions -``) on stdin, creates each missing
password file (``<data dir>/secrets/amqp-<service>``, 0600; an existing one is kept,
and a password the broker already has is taken from another checkout's data directory
rather than replaced) and prints, one tab-separated line each, the rabbitmqctl steps
still needed. Nothing
printed holds a password: setup.sh hands each to rabbitmqctl on stdin from its file.
``python -m deploy.broker definitions`` writes the same users (salted hashes), their
permissions and the topology as one definitions file, loaded by the broker at boot
(docker-compose) or with ``rabbitmqctl import_definitions`` on another machine.

The permissions (``permissions()``; RabbitMQ matches each regex against exchange and
queue names, PCRE): every name the set-up makes starts with SIUI_AMQP_EXCHANGE_PREFIX
(default ``siui.``: ``siui.events`` and the tests' ``siui.test.*``, ``siui.e2e.*``).
Services declare nothing of the topology (see shared.broker), so a service may

- configure only its own per-process queues (``shared.broker.PROCESS_QUEUES``: every
  service's SessionRevoked queues ``<exchange>.<service>.revoked.<32 hex>``, and ocsp's
  state-following queues ``<exchange>.ocsp.follow.<32 hex>``): the one thing it declares;
- write on the exchange (publish; the console, which publishes nothing, may not) and on
  those queues (queue.bind checks write on the queue), never on another queue: no
  binding or unbinding of any other service's queue;
- read the exchange (queue.bind checks read on it), those queues, and the queues it
  consumes (``shared.broker.TOPOLOGY``, by their first word) with their dead-letter
  queues (``deploy.replay_dead_letters`` takes a queue's parked events back as its
  consumer), no other. The console consumes none: its queue depths are passive
  declares, which need no permission.

On SIUI_EVENTS_EXCHANGE itself (topic permissions are per exchange name, so the tests'
exchanges have none) each service may also publish only under its own routing keys
(``shared.broker.PUBLISHERS``) and bind only its process queues' routing keys
(``users.session_revoked``; for ocsp also certs' issuer and certificate state events and
its own ``ocsp.signer_changed`` / ``ocsp.answers_presigned``): a forged event is refused
there by the broker before any consumer sees it, and no service can bind a queue of its
own to ``#`` to read every event.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from deploy.devpki import write_file
from shared.broker import (PROCESS_QUEUES, PUBLISHERS, SERVICES, TOPOLOGY, broker_user, read_secret, secret_path,
                           topology)
from shared.config import CommonConfig, ConfigError, env_str

DEFAULT_EXCHANGE_PREFIX = "siui."
PASSWORD_BYTES = 32  # 64 hex characters, as deploy.devpki's other secrets
HASHES = {"rabbit_password_hashing_sha256": hashlib.sha256, "rabbit_password_hashing_sha512": hashlib.sha512,
          "rabbit_password_hashing_md5": hashlib.md5}
NOTHING = "^$"  # matches no resource name


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


def names(exchange_prefix: str) -> dict[str, str]:
    """The regex pieces (unanchored) the permissions are made of."""
    p = re.escape(exchange_prefix)
    queues = "|".join(re.escape(spec.name) for spec in TOPOLOGY)
    words = "|".join(re.escape(spec.word) for spec in PROCESS_QUEUES)
    process = rf"(?:{words})\.[0-9a-f]{{32}}"
    # An exchange: a name under the prefix that is none of the set-up's queues, its
    # dead-letter exchange, nor a process's own queue (names with dots are both kinds).
    exchange = rf"{p}(?!.*\.(?:dlx|dlq)$)(?!.*\.(?:{queues})$)(?!.*\.{process}$).*"
    return {"prefix": p, "exchange": exchange, "process": process}


def process_words(service: str) -> list[str]:
    """The words of the process queues ``service`` declares (``shared.broker.PROCESS_QUEUES``)."""
    return [spec.word for spec in PROCESS_QUEUES if service in spec.services]


def permissions(exchange_prefix: str = DEFAULT_EXCHANGE_PREFIX, user_prefix: str = "siui-") -> dict[str, Permissions]:
    """Each service's broker user → its configure / write / read regexes."""
    piece = names(exchange_prefix)
    publishers = set(PUBLISHERS.values())
    out = {}
    for service in SERVICES:
        words = "|".join(map(re.escape, process_words(service)))
        revoked = rf"{piece['prefix']}.*\.{re.escape(service)}\.(?:{words})\.[0-9a-f]{{32}}"
        consumed = [re.escape(spec.name) for spec in TOPOLOGY if spec.service == service]
        own = rf"{piece['prefix']}.*\.(?:{'|'.join(consumed)})(?:\.dlq)?" if consumed else None
        writes = [piece["exchange"], revoked] if service in publishers else [revoked]
        reads = [piece["exchange"], revoked] + ([own] if own else [])
        out[broker_user(service, user_prefix)] = Permissions(f"^{revoked}$", f"^(?:{'|'.join(writes)})$",
                                                             f"^(?:{'|'.join(reads)})$")
    return out


def topic_permissions(user_prefix: str = "siui-") -> dict[str, tuple[str, str]]:
    """On the deployment's exchange: each service's user → (routing keys it may publish,
    binding keys it may bind): its own words (``^$`` for the console, which publishes
    nothing), and only its process queues' bindings (SessionRevoked; ocsp's state)."""
    out = {}
    for service in SERVICES:
        words = sorted(word for word, owner in PUBLISHERS.items() if owner == service)
        write = rf"^(?:{'|'.join(map(re.escape, words))})\." if words else NOTHING
        keys = [key for spec in PROCESS_QUEUES if service in spec.services for key in spec.routing_keys]
        out[broker_user(service, user_prefix)] = (write, f"^(?:{'|'.join(map(re.escape, keys))})$")
    return out


# -- passwords -----------------------------------------------------------------------------

def _write_secret(path: Path, text: str, *, replace: bool) -> None:
    """``text`` into ``path`` (0600, in a 0700 directory): a reader never sees half of it;
    without ``replace``, of two set-ups at once the first one's stays."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(path, text.encode(), 0o600, replace=replace)


def ensure_password(path: Path) -> str:
    """The password in ``path``; a new random one written there (0600) when it is absent."""
    if not path.exists():
        _write_secret(path, secrets.token_hex(PASSWORD_BYTES), replace=False)
    return read_secret(path)


def adopted_password(user: Mapping[str, Any], service: str, data_dirs: tuple[Path, ...]) -> str | None:
    """The password the broker has for ``user``, found in another data directory of this
    machine (another checkout's, ``--adopt-from``), or None. Several checkouts share one
    broker: taking the broker's password, rather than giving it ours, keeps every other
    checkout's services and tests logging in."""
    for data_dir in data_dirs:
        try:
            password = read_secret(secret_path(data_dir, service))
        except ConfigError:
            continue
        if hash_matches(user, password):
            return password
    return None


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt ‖ SHA-256(salt ‖ password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def hash_matches(user: Mapping[str, Any], password: str) -> bool:
    """Whether an exported user's ``password_hash`` is of ``password``."""
    digest = HASHES.get(user.get("hashing_algorithm", ""))
    try:
        raw = base64.b64decode(user.get("password_hash") or "", validate=True)
    except ValueError:
        return False
    if digest is None or len(raw) <= 4:
        return False
    return secrets.compare_digest(raw[4:], digest(raw[:4] + password.encode()).digest())


# -- what the set-up does --------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where and under which names: read from the same environment as the services."""

    data_dir: Path
    vhost: str
    exchange: str
    exchange_prefix: str
    user_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Target":
        env = os.environ if env is None else env
        common = CommonConfig.from_env(env)
        prefix = env_str(env, "SIUI_AMQP_EXCHANGE_PREFIX", DEFAULT_EXCHANGE_PREFIX)
        if not common.events_exchange.startswith(prefix):
            raise ConfigError(f"SIUI_EVENTS_EXCHANGE {common.events_exchange!r} does not start with "
                              f"SIUI_AMQP_EXCHANGE_PREFIX {prefix!r}: its services would be refused")
        vhost = unquote(urlsplit(common.amqp_urls[0]).path[1:]) or "/"  # every URL names the same
        return cls(common.data_dir, vhost, common.events_exchange, prefix, common.amqp_user_prefix)


def _tags(user: Mapping[str, Any]) -> list[str]:
    tags = user.get("tags") or []
    return [t for t in tags.split(",") if t] if isinstance(tags, str) else list(tags)


def _topology_present(current: Mapping[str, Any], target: Target) -> bool:
    def keys(kind: str, fields: tuple[str, ...], items) -> set[tuple]:
        return {tuple(item[f] for f in fields) for item in items if item.get("vhost", target.vhost) == target.vhost}

    wanted = topology(target.exchange)
    for kind, fields in (("exchanges", ("name",)), ("queues", ("name",)),
                         ("bindings", ("source", "destination", "routing_key"))):
        if not keys(kind, fields, wanted[kind]) <= keys(kind, fields, current.get(kind, [])):
            return False
    return True


def plan(current: Mapping[str, Any], target: Target, adopt_from: tuple[Path, ...] = ()) -> list[tuple[str, ...]]:
    """The rabbitmqctl steps that bring the broker (its exported ``current`` definitions)
    to the target, writing password files on the way: a user the broker already has keeps
    its password when this data directory or one of ``adopt_from`` holds it; only a new
    user, or one whose password none of them knows, gets this data directory's (made
    when missing). Empty: nothing to do."""
    steps: list[tuple[str, ...]] = []
    if target.vhost not in {v["name"] for v in current.get("vhosts", [])}:
        steps.append(("add_vhost", target.vhost))
    users = {u["name"]: u for u in current.get("users", [])}
    granted = {(p["user"], p["vhost"]): Permissions(p["configure"], p["write"], p["read"])
               for p in current.get("permissions", [])}
    topics = {(t["user"], t["vhost"], t["exchange"]): (t["write"], t["read"])
              for t in current.get("topic_permissions", [])}
    wanted_topics = topic_permissions(target.user_prefix)
    for user, wanted in permissions(target.exchange_prefix, target.user_prefix).items():
        service = user[len(target.user_prefix):]
        path = secret_path(target.data_dir, service)
        if user not in users:
            ensure_password(path)
            steps.append(("add_user", user, service))
        elif not (path.exists() and hash_matches(users[user], read_secret(path))):
            adopted = adopted_password(users[user], service, adopt_from)
            if adopted is not None:
                _write_secret(path, adopted, replace=True)
            else:
                ensure_password(path)
                steps.append(("change_password", user, service))
        if user in users and _tags(users[user]):
            steps.append(("clear_user_tags", user))  # an impersonator tag would allow any user_id
        if granted.get((user, target.vhost)) != wanted:
            steps.append(("set_permissions", target.vhost, user, wanted.configure, wanted.write, wanted.read))
        if user in wanted_topics and topics.get((user, target.vhost, target.exchange)) != wanted_topics[user]:
            steps.append(("set_topic_permissions", target.vhost, user, target.exchange, *wanted_topics[user]))
    outdated = _outdated_queues(current, target)
    steps.extend(("replace_queue", target.vhost, name) for name in outdated)
    if outdated or not _topology_present(current, target):
        steps.append(("import_topology",))
    return steps


def _outdated_queues(current: Mapping[str, Any], target: Target) -> list[str]:
    """The target's queues the broker has with other arguments than the topology's (an
    earlier release's lower delivery limit). A queue's arguments cannot be changed: the
    set-up deletes such a queue, when it is empty and no service is connected, and
    imports it anew (``replace_queue`` in deploy/setup.sh); a definitions import alone
    leaves an existing queue as it is."""
    wanted = {q["name"]: q["arguments"] for q in topology(target.exchange)["queues"]}
    return [q["name"] for q in current.get("queues", [])
            if q.get("vhost", target.vhost) == target.vhost and q["name"] in wanted
            and (q.get("arguments") or {}) != wanted[q["name"]]]


def definitions(target: Target, *, with_users: bool) -> dict[str, Any]:
    """The topology of the target's exchange, and (``with_users``) the services' users
    with their kept passwords' hashes, permissions and topic permissions."""
    described = topology(target.exchange)
    out: dict[str, Any] = {"vhosts": [{"name": target.vhost}]}
    for kind, items in described.items():
        out[kind] = [{**item, "vhost": target.vhost} for item in items]
    if with_users:
        out["users"], out["permissions"], out["topic_permissions"] = [], [], []
        topics = topic_permissions(target.user_prefix)
        for user, wanted in permissions(target.exchange_prefix, target.user_prefix).items():
            password = ensure_password(secret_path(target.data_dir, user[len(target.user_prefix):]))
            out["users"].append({"name": user, "password_hash": password_hash(password),
                                 "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []})
            out["permissions"].append({"user": user, "vhost": target.vhost, "configure": wanted.configure,
                                       "write": wanted.write, "read": wanted.read})
            if user in topics:
                write, read = topics[user]
                out["topic_permissions"].append({"user": user, "vhost": target.vhost, "exchange": target.exchange,
                                                 "write": write, "read": read})
    return out


def _write_public(path: Path, data: dict[str, Any]) -> None:
    """Definitions hold salted hashes, never a password: the broker's own user reads them."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


MAX_EXPORT_BYTES = 64 * 1024 * 1024  # a broker's whole definitions; far above any real one


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.broker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make_plan = commands.add_parser("plan", help="read exported definitions on stdin, print the steps left")
    make_plan.add_argument("--topology-file", type=Path, required=True,
                           help="where to write the topology when it has to be imported")
    make_plan.add_argument("--adopt-from", type=Path, action="append", default=[], metavar="DATA_DIR",
                           help="another data directory whose passwords the broker may already have")
    make_definitions = commands.add_parser("definitions", help="write a definitions file")
    make_definitions.add_argument("--out", type=Path, required=True)
    make_definitions.add_argument("--with-users", action="store_true",
                                  help="the users (password hashes), their permissions, and the topology")
    args = parser.parse_args(argv)
    try:
        target = Target.from_env()
        if args.command == "definitions":
            _write_public(args.out, definitions(target, with_users=args.with_users))
            return 0
        raw = sys.stdin.buffer.read(MAX_EXPORT_BYTES + 1)
        if len(raw) > MAX_EXPORT_BYTES:
            raise ConfigError("the exported definitions are larger than 64 MiB")
        steps = plan(json.loads(raw), target, tuple(d for d in args.adopt_from if d.resolve() != target.data_dir))
    except (ConfigError, ValueError) as exc:
        print(f"deploy.broker: {exc}", file=sys.stderr)
        return 2
    if ("import_topology",) in steps:
        _write_public(args.topology_file, definitions(target, with_users=False))
    for step in steps:
        print("\t".join(step))
    return 0


if __name__ == "__main__":
    sys.exit(main())
