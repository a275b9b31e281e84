"""The RabbitMQ side: who may publish what, each service's own broker login, publishing.

Every service connects as its own broker user, ``<prefix><service>`` (``siui-keygen``,
``siui-users``, ...; the prefix is SIUI_AMQP_USER_PREFIX), and stamps what it publishes
with that user in the AMQP ``user_id`` property, which RabbitMQ checks against the
connection's login. A consumer accepts an event only from the service that ``PUBLISHERS``
names for its routing key (``shared.inbox``): a KeyIssued from anyone but siui-keygen is
dead-lettered, never applied.

The topology (exchange, queues, bindings, dead-letter queues) is declared by the set-up
(``deploy.broker``: deploy/setup.sh, docker-compose's broker definitions), before any
service starts, so an event published before its consumer ever ran is queued, never
dropped as unroutable. Services may not declare it: declaring a queue with a dead-letter
exchange needs read access to that queue, which would let every service consume every
other's. A service checks the exchange is there (a passive declare needs no permission)
and refuses to start without it.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiohttp import web

from shared.config import DEFAULT_AMQP_USER_PREFIX as DEFAULT_USER_PREFIX
from shared.config import ConfigError, split_amqp_urls
from shared.failover import connect_failover
from shared.events import Envelope, SessionRevoked
from shared.logging import get_logger

log = get_logger(__name__)

#: Returns of one message before the broker itself parks it in the dead-letter queue: a
#: backstop only. The consumer decides (shared.inbox: a few real handler failures); the
#: broker counts every return, a crash's or a clean stop's included, so a low limit would
#: park events that were never wrong after a few restarts during a database stall.
DELIVERY_LIMIT = 1000
PUBLISH_TIMEOUT = 10.0
CLOSE_SECONDS = 5.0


@dataclass(frozen=True)
class QueueSpec:
    """A durable queue one service consumes, and the routing keys bound to it. Its name
    starts with the consuming service's name: the broker permissions are cut by it."""

    name: str
    routing_keys: tuple[str, ...]

    @property
    def service(self) -> str:
        return self.name.partition(".")[0]


#: The certs events the responders' registry is made of: the durable ``ocsp.certs`` (which
#: writes the ocsp tables, read at a responder's start) and every responder process's own
#: ``follow`` queue (``PROCESS_QUEUES``, which keeps its registry current) are bound to them.
CERTS_STATE_KEYS = ("certs.issuer_registered", "certs.issuer_updated",
                    "certs.certificate_registered", "certs.certificate_suspended",
                    "certs.certificate_reinstated", "certs.certificate_revoked",
                    "certs.certificate_revoked_by_issuer")
#: What ocsp itself tells its responders (from its outbox): a delegated signer changed,
#: pre-signed answers were written (their bytes).
OCSP_STATE_KEYS = ("ocsp.signer_changed", "ocsp.answers_presigned")

TOPOLOGY: tuple[QueueSpec, ...] = (
    QueueSpec("users.key-issued", ("keygen.key_issued",)),
    QueueSpec("certs.users", ("users.external_user_created", "users.external_user_deleted")),
    QueueSpec("certs.usage", ("ocsp.certificate_used",)),
    # Issue 15: renewals presented on :8443, and the houses' refusals back to the channel.
    QueueSpec("certs.renewals", ("ocsp.renewal_presented",)),
    QueueSpec("ocsp.renewals", ("certs.renewal_rejected",)),
    QueueSpec("ocsp.certs", CERTS_STATE_KEYS),
    QueueSpec("ocsp.keys", ("keygen.key_issued", "users.external_user_created",
                            "users.external_user_deleted")),
    # users counts each external user's certificates: one that has any is not deleted.
    QueueSpec("users.certs", ("certs.certificate_registered", "certs.certificate_revoked")),
)

#: Who publishes what: the first word of a routing key names the one service allowed to
#: publish under it (every event type's ROUTING_KEY starts with its publisher's word;
#: tests/unit/test_broker_identity.py holds them to it). A consumed message whose
#: ``user_id`` is not that service's broker user is refused as forged.
PUBLISHERS: dict[str, str] = {"keygen": "keygen", "users": "users", "certs": "certs", "ocsp": "ocsp"}
#: Every service that logs in to the broker; the console only reads queue depths.
SERVICES = ("keygen", "users", "certs", "ocsp", "console")
#: The per-process queue on which a service follows SessionRevoked (``revocation_queue``).
REVOCATION_WORD = "revoked"
#: The per-process queue on which each ocsp process follows the responders' state.
FOLLOW_WORD = "follow"


@dataclass(frozen=True)
class ProcessQueueSpec:
    """A queue each process of ``services`` declares for itself (exclusive, auto-delete:
    it lives as long as the process's connection), named ``<exchange>.<service>.<word>.<32
    hex>``, bound to ``routing_keys``: every process must see every such event, where a
    ``QueueSpec``'s durable queue gives each event to one consumer. The set-up grants
    each service's user exactly its own words' queues and bindings (deploy.broker)."""

    word: str
    services: tuple[str, ...]
    routing_keys: tuple[str, ...]


PROCESS_QUEUES: tuple[ProcessQueueSpec, ...] = (
    ProcessQueueSpec(REVOCATION_WORD, SERVICES, (SessionRevoked.ROUTING_KEY,)),
    ProcessQueueSpec(FOLLOW_WORD, ("ocsp",), CERTS_STATE_KEYS + OCSP_STATE_KEYS),
)


def process_queue_spec(word: str) -> ProcessQueueSpec:
    return next(spec for spec in PROCESS_QUEUES if spec.word == word)


def broker_user(service: str, prefix: str = DEFAULT_USER_PREFIX) -> str:
    """The broker user ``service`` logs in as, and stamps its events with."""
    return f"{prefix}{service}"


def publisher_of(routing_key: str) -> str | None:
    """The service allowed to publish under ``routing_key``; None when no service is."""
    return PUBLISHERS.get(routing_key.partition(".")[0])


def process_queue_name(exchange: str, service: str, word: str) -> str:
    """A new name for one process's exclusive queue (``ProcessQueueSpec``). Named by the
    service (not left to the client library's ``amq_…`` names) so that each broker user
    may create, bind and read only its own such queues."""
    return f"{exchange}.{service}.{word}.{uuid.uuid4().hex}"


def revocation_queue(exchange: str, service: str) -> str:
    """A new name for one process's exclusive SessionRevoked queue."""
    return process_queue_name(exchange, service, REVOCATION_WORD)


async def declare_process_queue(broker: "Broker", service: str, word: str, on_message, *,
                                prefetch: int | None = None) -> tuple[AbstractChannel, Any]:
    """Declare this process's ``word`` queue on a channel of its own, bind it to its
    spec's routing keys and consume it with ``on_message``; (channel, queue). The
    connection's robust channel declares, binds and consumes it again after a reconnect
    (under the same name), but what was published meanwhile reached no queue of ours:
    the caller follows ``broker.on_reconnect`` to read again what it missed."""
    spec = process_queue_spec(word)
    if service not in spec.services:
        raise ValueError(f"{service} has no {word!r} process queue (shared.broker.PROCESS_QUEUES)")
    channel = await broker.connection.channel()
    if prefetch is not None:
        await channel.set_qos(prefetch_count=prefetch)
    exchange = await channel.get_exchange(broker.exchange_name)
    queue = await channel.declare_queue(process_queue_name(broker.exchange_name, service, word),
                                        exclusive=True, auto_delete=True)
    for key in spec.routing_keys:
        await queue.bind(exchange, routing_key=key)
    await queue.consume(on_message)
    return channel, queue


def topology(exchange: str) -> dict[str, list[dict[str, Any]]]:
    """The exchanges, queues and bindings of ``exchange``, in RabbitMQ's definitions
    format (without ``vhost``): the one description the set-up declares, whether through
    ``rabbitmqctl import_definitions``, the broker's boot-time definitions or AMQP."""
    dlx = f"{exchange}.dlx"
    exchanges = [{"name": exchange, "type": "topic", "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}},
                 {"name": dlx, "type": "direct", "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}}]
    queues, bindings = [], []
    for spec in TOPOLOGY:
        name = f"{exchange}.{spec.name}"
        queues.append({"name": f"{name}.dlq", "durable": True, "auto_delete": False, "arguments": {}})
        bindings.append({"source": dlx, "destination": f"{name}.dlq", "destination_type": "queue",
                         "routing_key": name, "arguments": {}})
        queues.append({"name": name, "durable": True, "auto_delete": False, "arguments": {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": dlx,
            "x-dead-letter-routing-key": name,
        }})
        bindings.extend({"source": exchange, "destination": name, "destination_type": "queue",
                         "routing_key": key, "arguments": {}} for key in spec.routing_keys)
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


async def declare_topology(channel: AbstractChannel, exchange_name: str) -> AbstractExchange:
    """Declare ``topology(exchange_name)`` over AMQP. Needs an administrator's login (the
    services' users may not): the tests' set-up of their own exchanges uses it."""
    described = topology(exchange_name)
    exchanges = {}
    for spec in described["exchanges"]:
        exchanges[spec["name"]] = await channel.declare_exchange(
            spec["name"], aio_pika.ExchangeType(spec["type"]), durable=True)
    queues = {}
    for spec in described["queues"]:
        queues[spec["name"]] = await channel.declare_queue(spec["name"], durable=True,
                                                           arguments=spec["arguments"] or None)
    for binding in described["bindings"]:
        await queues[binding["destination"]].bind(exchanges[binding["source"]],
                                                  routing_key=binding["routing_key"])
    return exchanges[exchange_name]


# -- logging in -------------------------------------------------------------------------

SECRET_MAX_CHARS = 256


def secret_path(data_dir: Path, service: str) -> Path:
    """Where the set-up writes ``service``'s broker password (mode 0600)."""
    return data_dir / "secrets" / f"amqp-{service}"


def read_secret(path: Path) -> str:
    """A broker password from its file: 1 to 256 printable characters without spaces, in
    a file nobody but its owner can read. Raises ConfigError (never showing the file)."""
    try:
        with open(path, "rb") as file:
            mode = Path(path).stat().st_mode
            raw = file.read(SECRET_MAX_CHARS + 2)
    except FileNotFoundError:
        raise ConfigError(f"no broker password: {path} does not exist. Run deploy/setup.sh: it creates "
                          "each service's RabbitMQ user and writes its password there") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the broker password in {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others (mode {mode & 0o777:o}): chmod 600 it")
    text = raw.decode("ascii", "replace").strip()
    if not 0 < len(text) <= SECRET_MAX_CHARS or not text.isprintable() or any(c.isspace() for c in text):
        raise ConfigError(f"{path} holds no broker password (1 to {SECRET_MAX_CHARS} printable characters)")
    return text


def broker_url(amqp_url: str, data_dir: Path, service: str, *, user_prefix: str = DEFAULT_USER_PREFIX) -> str:
    """The URL ``service`` connects with: SIUI_AMQP_URL's host, port and virtual host, as
    the service's own user ``<prefix><service>``, with the password the set-up wrote in
    ``<data dir>/secrets/amqp-<service>``. A user written in SIUI_AMQP_URL wins (for a
    deployment that hands each service its own URL) but must be that same user: events
    stamped with any other would all be refused as forged, so the service does not start.
    Several URLs (a cluster's nodes, ``shared.config.split_amqp_urls``) give as many,
    joined by commas, each with the same login. Raises ConfigError; the result holds a
    password: never log it."""
    urls = split_amqp_urls(amqp_url)
    if len(urls) > 1:
        return ",".join(broker_url(url, data_dir, service, user_prefix=user_prefix) for url in urls)
    parts = urlsplit(amqp_url)
    user = broker_user(service, user_prefix)
    if parts.username is not None:
        given = unquote(parts.username)
        if given != user:
            raise ConfigError(
                f"SIUI_AMQP_URL logs in as {given!r}, but {service} must connect as its own broker user "
                f"{user!r}: consumers refuse events from any other. Leave the user out of SIUI_AMQP_URL "
                f"(amqp://host:port/vhost) to use the password deploy/setup.sh wrote in "
                f"{secret_path(data_dir, service)}, or give {user!r} with its password")
        return amqp_url
    password = read_secret(secret_path(data_dir, service))
    address = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{address}"))


# -- the connection ----------------------------------------------------------------------

class Broker:
    """A connection as one service's user, with a confirming channel and the exchange."""

    def __init__(self, connection: AbstractRobustConnection, channel: AbstractChannel,
                 exchange: AbstractExchange, exchange_name: str, user: str,
                 user_prefix: str = DEFAULT_USER_PREFIX):
        self.connection = connection
        self.channel = channel
        self.exchange = exchange
        self.exchange_name = exchange_name
        self.user = user
        self.user_prefix = user_prefix
        self._renewing: asyncio.Future | None = None

    def queue_name(self, short: str) -> str:
        # Prefixed with the exchange so that isolated test exchanges get their own queues.
        return f"{self.exchange_name}.{short}"

    def expected_publisher(self, routing_key: str) -> str | None:
        """The broker user a message under ``routing_key`` must come from (None: nobody)."""
        service = publisher_of(routing_key)
        return broker_user(service, self.user_prefix) if service else None

    @property
    def is_connected(self) -> bool:
        # A robust connection that lost its broker is not closed (it is reconnecting);
        # its ``connected`` event is what says whether the link is up right now.
        return not self.connection.is_closed and self.connection.connected.is_set()

    def on_reconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` each time the connection comes back after a loss (its
        channels restored); returns the function that stops calling it."""
        def called(_connection, *_args) -> None:
            callback()

        self.connection.reconnect_callbacks.add(called)
        return lambda: self.connection.reconnect_callbacks.discard(called)

    async def publish(self, envelope: Envelope, *, body: bytes | None = None) -> None:
        """Publish persistently, stamped with this connection's user (the broker refuses
        any other), and wait for the broker's confirm (raises if refused). ``body``: the
        envelope's bytes as they were first published (a replay keeps them exactly,
        fields this code does not know included)."""
        await self.publish_body(envelope.to_json() if body is None else body, routing_key=envelope.routing_key,
                                event_id=envelope.id, event_type=envelope.type)

    async def publish_body(self, body: bytes, *, routing_key: str, event_id: str, event_type: str) -> None:
        """``publish`` for an envelope already serialized (the outbox keeps its bytes and
        its routing key, id and type beside them: nothing to parse again).

        Straight on the channel's AMQP layer, without waiting for the frames to reach the
        socket (``wait=False``): a relay's batch is queued for the connection's writer at
        once, in order, and only the confirms are awaited, which makes a relay's publish
        about a third cheaper than aio-pika's ``Exchange.publish``, which waits for each
        message's frames to be written before taking the next."""
        publishing = self.channel
        channel = await publishing.get_underlay_channel()  # ChannelInvalidStateError while reconnecting
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json", delivery_mode=2, message_id=event_id, message_type=event_type,
            user_id=self.user)
        try:
            result = await channel.basic_publish(body, exchange=self.exchange_name, routing_key=routing_key,
                                                 properties=properties, mandatory=True, timeout=PUBLISH_TIMEOUT,
                                                 wait=False)
        except aiormq.exceptions.DeliveryError:  # Basic.Nack
            self._renew_channel(publishing)
            raise
        if not isinstance(result, aiormq.spec.Basic.Ack):  # a confirm of another kind: not taken
            self._renew_channel(publishing)
            raise NotConfirmed(f"the broker answered {type(result).__name__}, not Basic.Ack")

    def _renew_channel(self, refused: AbstractChannel) -> None:
        """Put a new confirming channel in place of ``refused``, whose publish the broker
        nacked. Seen on RabbitMQ 3.10 with a cluster: a channel restored on another node
        while the quorum queues were still electing their new leaders (the node that led
        them had just died) has every later publish nacked, for as long as it lives,
        while a new channel on the same connection is acked at once
        (tests/cluster/test_rabbit_cluster.py). The nacked rows stay in the outbox and
        go out again on the new channel; a nack for any other reason costs one channel."""
        if refused is not self.channel or (self._renewing is not None and not self._renewing.done()):
            return
        log.warning("broker_channel_renewed", reason="publish nacked")

        async def renew() -> None:
            try:
                channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
                await channel.set_qos(prefetch_count=64)
                self.exchange = await channel.get_exchange(self.exchange_name, ensure=False)
                self.channel = channel
            except Exception as exc:  # noqa: BLE001 - the connection is away: the next nack tries again
                log.warning("broker_channel_renew_failed", error=repr(exc)[:300])
                return
            try:
                await asyncio.wait_for(refused.close(), CLOSE_SECONDS)
            except Exception:  # noqa: BLE001 - the old channel is dropped either way
                pass

        self._renewing = asyncio.ensure_future(renew())

    async def close(self, timeout: float = CLOSE_SECONDS) -> None:
        """Close the connection, in bounded time (a broker that stopped answering would
        otherwise hold a service's stop)."""
        try:
            await asyncio.wait_for(self.connection.close(), timeout)
        except (asyncio.TimeoutError, aiormq.exceptions.AMQPError, OSError):
            log.warning("broker_close_abandoned", after_seconds=timeout)


class NotConfirmed(Exception):
    """The broker did not confirm a publish (an unroutable message is raised by aiormq
    itself, as PublishError): the event stays in the outbox."""


class TopologyMissing(ConfigError):
    """The exchange is not on the broker: the set-up has not declared it."""


async def exchange_exists(connection: AbstractRobustConnection, name: str) -> bool:
    """A passive declare on a channel of its own (a missing exchange closes the channel)."""
    channel = await connection.channel()
    try:
        await channel.get_exchange(name, ensure=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


async def connect(url: str, exchange_name: str, *, user_prefix: str = DEFAULT_USER_PREFIX,
                  wait_seconds: float = 60.0) -> Broker:
    """Connect as the user ``url`` names (retrying while the broker starts), check that the
    set-up declared the exchange, and open a confirming channel. ``url``: one URL, or a
    cluster's nodes separated by commas or spaces; the first that answers is taken, and
    the connection moves along the list when its node goes (``shared.failover.FailoverConnection``).
    A refused login fails at once: waiting would not make a wrong password right."""
    urls = split_amqp_urls(url)
    user = unquote(urlsplit(urls[0]).username or "")
    if not user:
        raise ValueError("connect: the URL names no broker user (see broker_url)")
    connection = await connect_failover(urls, wait_seconds=wait_seconds, user=user)
    try:
        if not await exchange_exists(connection, exchange_name):
            raise TopologyMissing(f"the exchange {exchange_name!r} is not on the broker: the set-up declares it "
                                  "with its queues (deploy/setup.sh, with the same SIUI_EVENTS_EXCHANGE)")
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=64)
        exchange = await channel.get_exchange(exchange_name, ensure=False)
    except BaseException:
        await connection.close()
        raise
    return Broker(connection, channel, exchange, exchange_name, user, user_prefix)


BROKER = web.AppKey("broker", Broker)


def broker_ctx(amqp_url: str, exchange_name: str, *, data_dir: Path, service: str,
               user_prefix: str = DEFAULT_USER_PREFIX):
    """cleanup_ctx: ``service``'s broker connection, as its own user, under ``app[BROKER]``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        url = broker_url(amqp_url, data_dir, service, user_prefix=user_prefix)
        broker = await connect(url, exchange_name, user_prefix=user_prefix)
        app[BROKER] = broker
        try:
            yield
        finally:
            await broker.close()

    return ctx
