"""One broker connection over the nodes of a RabbitMQ cluster (SIUI_AMQP_URL listing
several): aio-pika's robust connection, which restores channels, queues and consumers
after a loss, moved along the list so that each attempt after a loss goes to the next
node. ``shared.broker.connect`` builds every service's connection with it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit, urlunsplit

import aio_pika
import aiormq
from yarl import URL

from shared.config import ConfigError, split_amqp_urls
from shared.logging import get_logger

log = get_logger(__name__)

#: Seconds between attempts to reconnect to a broker that went away (aio-pika's default
#: is 5): a restarted broker, or the next node, is in use within about a second.
RECONNECT_INTERVAL = 0.5


class FailoverConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection (channels, queues, consumers and confirms restored
    after a loss) over the nodes of a cluster instead of one URL: each attempt after a
    loss or a failed attempt goes to the next node in the list, round the list, so a
    service whose node died is on another within about ``RECONNECT_INTERVAL`` (a dead
    node refuses at once; one cut off by the network costs the connect timeout).

    What the robust connection gives does not depend on which node it lands on: the
    topology is the cluster's, the quorum queues have a replica on every node, and a
    publish whose confirm never came raised in the outbox relay, which publishes the row
    again; a delivery not acknowledged before the loss is redelivered by the queue and
    recognised by the consumer's inbox. Nothing is lost, nothing is applied twice.

    aio-pika reads ``url`` for each attempt and clears ``transport`` at the start of each
    one (RobustConnection.__connect_transport, 10.x; pinned in pyproject.toml, and
    tests/integration/test_broker_failover.py fails if that changes): the node is
    chosen there, the one point between attempts this class can see."""

    def __init__(self, urls: Sequence[str | URL], *, start: int = 0, **kwargs):
        if not urls:
            raise ValueError("FailoverConnection: no URL")
        self._nodes = [URL(str(u)) for u in urls]
        self._node = start % len(self._nodes)
        self._attempts = 0
        self._counting = False
        super().__init__(self._nodes[self._node], **kwargs)
        self._counting = True

    @property
    def nodes(self) -> list[URL]:
        return list(self._nodes)

    @property
    def url(self) -> URL:  # type: ignore[override]
        return self._nodes[self._node]

    @url.setter
    def url(self, value: URL) -> None:
        # Connection.__init__ sets the first; update_secret a new password: every node's.
        value = URL(str(value))
        self._nodes = [node.with_password(value.password) if value.password and node.user else node
                       for node in self._nodes]
        self._nodes[self._node] = value

    @property
    def transport(self):  # type: ignore[override]
        return self.__dict__.get("_transport")

    @transport.setter
    def transport(self, value) -> None:
        if value is None and self._counting:
            if self._attempts:
                self._node = (self._node + 1) % len(self._nodes)
            self._attempts += 1
        self.__dict__["_transport"] = value



async def connect_failover(urls: str | Sequence[str], *, wait_seconds: float = 60.0, timeout: float = 10.0,
                           user: str | None = None) -> FailoverConnection:
    """A ``FailoverConnection`` on the first of ``urls`` that answers, trying each in
    turn (and again, round the list, while the broker starts) for up to
    ``wait_seconds``, each node at least once. Raises ConfigError when a node refuses
    the login."""
    if isinstance(urls, str):
        urls = split_amqp_urls(urls)
    user = user or unquote(urlsplit(urls[0]).username or "")
    deadline = asyncio.get_running_loop().time() + wait_seconds
    attempt = 0
    while True:
        connection = FailoverConnection(urls, start=attempt, reconnect_interval=RECONNECT_INTERVAL)
        try:
            await connection.connect(timeout=timeout)
            return connection
        except aiormq.exceptions.ProbableAuthenticationError:
            await connection.close()
            raise ConfigError(f"the broker refused the login of {user!r}: its password is not the one the "
                              "set-up gave it (run deploy/setup.sh again)") from None
        except (OSError, aiormq.exceptions.AMQPError, asyncio.TimeoutError) as exc:
            await connection.close()
            attempt += 1
            if attempt >= len(urls) and asyncio.get_running_loop().time() > deadline:
                raise  # every node tried at least once, and the time is up
            log.warning("broker_unreachable", node=_safe(urls[(attempt - 1) % len(urls)]), error=str(exc)[:300])
            if attempt % len(urls) == 0:  # every node tried: wait before the next round
                await asyncio.sleep(1.0)


def _safe(url: str) -> str:
    """A URL for the logs: its password left out."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
