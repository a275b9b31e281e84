"""What each service's broker user may not do, asked of the real RabbitMQ with the users
and permissions deploy/setup.sh made: the broker itself refuses (ACCESS_REFUSED,
PRECONDITION_FAILED), whatever a compromised service's code would try.

On an exchange of this module's own (declared as the set-up does), so that nothing here
takes or leaves a message another test is waiting for."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiormq
import pytest
from aiohttp.test_utils import TestServer

from services.keygen.app import create_app as keygen_app
from services.keygen.config import Config as KeygenConfig
from shared.broker import (FOLLOW_WORD, connect, process_queue_name, process_queue_spec, revocation_queue,
                           secret_path)
from shared.config import ConfigError
from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
Refused = aiormq.exceptions.ChannelAccessRefused


async def ignore(message) -> None:
    """A consumer that takes nothing (the channel closes with the message unacknowledged)."""


@pytest.fixture(scope="module")
async def exchange():
    name = f"siui.test.perms.{uuid.uuid4().hex[:8]}"
    await infra.declare_exchange(name)
    yield name
    await infra.delete_exchange(name)


@pytest.fixture
async def login():
    """``await login("certs")``: a channel on a connection as that service's broker user."""
    connections = []

    async def open_as(service: str, **channel_options):
        connection = await aio_pika.connect(infra.amqp_url_for(service))
        connections.append(connection)
        return await connection.channel(**channel_options)

    yield open_as
    for connection in connections:
        await connection.close()


async def test_the_broker_refuses_a_user_id_that_is_not_the_connections(login, exchange):
    channel = await login("certs", publisher_confirms=True)
    target = await channel.get_exchange(exchange, ensure=False)
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id property set to 'siui-keygen'"):
        await target.publish(aio_pika.Message(b"{}", user_id="siui-keygen"), routing_key="keygen.key_issued",
                             timeout=10)


async def test_a_service_publishes_stamped_with_its_own_user(login, exchange):
    channel = await login("keygen", publisher_confirms=True)
    target = await channel.get_exchange(exchange, ensure=False)
    # Bound to nothing: confirmed, and no queue of this exchange gets it.
    await target.publish(aio_pika.Message(b"{}", user_id="siui-keygen"), routing_key="keygen.nothing_bound",
                         timeout=10)


async def test_the_console_cannot_publish(login, exchange):
    channel = await login("console", publisher_confirms=True)
    target = await channel.get_exchange(exchange, ensure=False)
    with pytest.raises(Refused, match=f"exchange '{exchange}'.*siui-console"):
        await target.publish(aio_pika.Message(b"{}", user_id="siui-console"), routing_key="users.session_revoked",
                             timeout=10)


async def test_the_console_reads_queue_depths_by_passive_declares(login, exchange):
    channel = await login("console")
    queue = await channel.declare_queue(f"{exchange}.users.key-issued", passive=True)
    assert queue.declaration_result.message_count == 0


@pytest.mark.parametrize("service", ["certs", "keygen", "ocsp", "console"])
async def test_no_other_service_can_consume_the_users_queue(login, exchange, service):
    channel = await login(service)
    queue = await channel.get_queue(f"{exchange}.users.key-issued", ensure=False)
    with pytest.raises(Refused, match=f"queue '{exchange}.users.key-issued'"):
        await queue.consume(ignore)


async def test_the_users_service_consumes_its_own_queue(login, exchange):
    channel = await login("users")
    queue = await channel.get_queue(f"{exchange}.users.key-issued", ensure=False)
    tag = await queue.consume(ignore)
    await queue.cancel(tag)


async def test_certs_cannot_unbind_delete_or_rebind_the_users_queue(login, exchange):
    """Unbinding or deleting it would drop every KeyIssued for users, unseen."""
    name = f"{exchange}.users.key-issued"
    channel = await login("certs")
    with pytest.raises(Refused):
        await (await channel.get_queue(name, ensure=False)).unbind(exchange, routing_key="keygen.key_issued")
    channel = await login("certs")
    with pytest.raises(Refused):
        await channel.queue_delete(name)
    channel = await login("certs")
    with pytest.raises(Refused):
        await (await channel.get_queue(name, ensure=False)).bind(exchange, routing_key="certs.#")


@pytest.mark.parametrize("what", ["a queue", "an exchange", "another's dead-letter queue"])
async def test_no_service_declares_the_topology_or_reads_anothers_dead_letter_queue(login, exchange, what):
    channel = await login("users")
    with pytest.raises(Refused):
        if what == "a queue":
            await channel.declare_queue(f"{exchange}.users.extra", durable=True)
        elif what == "an exchange":
            await channel.declare_exchange(f"{exchange}.other", aio_pika.ExchangeType.TOPIC)
        else:
            await (await channel.get_queue(f"{exchange}.ocsp.keys.dlq", ensure=False)).get(fail=False)


async def test_a_consumer_takes_back_its_own_dead_letters(login, exchange):
    """deploy.replay_dead_letters reads a dead-letter queue as the queue's consumer."""
    channel = await login("users")
    await (await channel.get_queue(f"{exchange}.users.key-issued.dlq", ensure=False)).get(fail=False)


async def test_a_service_may_follow_logouts_only_on_a_queue_named_for_it(login, exchange):
    channel = await login("ocsp")
    queue = await channel.declare_queue(revocation_queue(exchange, "ocsp"), exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="users.session_revoked")
    channel = await login("ocsp")
    with pytest.raises(Refused):
        await channel.declare_queue(revocation_queue(exchange, "users"), exclusive=True, auto_delete=True)


async def test_only_ocsp_follows_the_responders_state_on_queues_of_its_own(login, exchange):
    """Issue 14: each ocsp process's own queue, bound to certs' state and ocsp's own
    events; no other service may make one (it would read every certificate's state)."""
    channel = await login("ocsp")
    queue = await channel.declare_queue(process_queue_name(exchange, "ocsp", FOLLOW_WORD), exclusive=True,
                                        auto_delete=True)
    for key in process_queue_spec(FOLLOW_WORD).routing_keys:
        await queue.bind(exchange, routing_key=key)
    channel = await login("certs")
    with pytest.raises(Refused):
        await channel.declare_queue(process_queue_name(exchange, "certs", FOLLOW_WORD), exclusive=True,
                                    auto_delete=True)


async def test_on_the_deployments_exchange_only_ocsp_binds_the_certificate_states(login):
    channel = await login("ocsp")
    queue = await channel.declare_queue(process_queue_name(set_up_exchange(), "ocsp", FOLLOW_WORD), exclusive=True,
                                        auto_delete=True)
    await queue.bind(set_up_exchange(), routing_key="certs.certificate_suspended")
    with pytest.raises(Refused, match="access to topic 'keygen.key_issued'"):
        await queue.bind(set_up_exchange(), routing_key="keygen.key_issued")


def set_up_exchange() -> str:
    """The exchange deploy/setup.sh set topic permissions on (``make test`` runs it)."""
    return os.environ.get("SIUI_EVENTS_EXCHANGE") or "siui.events"


async def test_on_the_deployments_exchange_certs_cannot_even_send_a_key_issued(login):
    """Topic permissions (per exchange name, so only on the set-up's exchange): the broker
    refuses a routing key outside the publisher's own words before any queue sees it."""
    channel = await login("certs", publisher_confirms=True)
    target = await channel.get_exchange(set_up_exchange(), ensure=False)
    with pytest.raises(Refused, match="access to topic 'keygen.key_issued'"):
        await target.publish(aio_pika.Message(b"{}", user_id="siui-certs"), routing_key="keygen.key_issued",
                             timeout=10)


async def test_on_the_deployments_exchange_no_service_can_bind_everything(login):
    """Else any service could read every event through a queue of its own."""
    channel = await login("certs")
    queue = await channel.declare_queue(revocation_queue(set_up_exchange(), "certs"), exclusive=True,
                                        auto_delete=True)
    with pytest.raises(Refused, match="access to topic '#'"):
        await queue.bind(set_up_exchange(), routing_key="#")


async def test_a_wrong_password_is_refused_at_once_with_what_to_do(exchange):
    parts = urlsplit(infra.amqp_url_for("keygen"))
    wrong = urlunsplit(parts._replace(netloc=f"siui-keygen:not-the-password@{parts.hostname}:{parts.port}"))
    with pytest.raises(ConfigError, match="refused the login of 'siui-keygen'.*deploy/setup.sh"):
        await connect(wrong, exchange, wait_seconds=1)


async def test_a_missing_topology_stops_the_service_at_connect():
    with pytest.raises(ConfigError, match="not on the broker.*deploy/setup.sh"):
        await connect(infra.amqp_url_for("keygen"), f"siui.test.absent.{uuid.uuid4().hex[:8]}")


async def test_a_service_without_its_broker_password_does_not_start(common_config, tmp_path):
    """Fail closed: no password, no start (never a fallback to guest)."""
    data_dir = tmp_path / "data"
    shutil.copytree(common_config.data_dir, data_dir)
    secret_path(data_dir, "keygen").unlink()
    config = KeygenConfig(common=dataclasses.replace(common_config, data_dir=data_dir), port=0)
    server = TestServer(keygen_app(config))
    with pytest.raises(ConfigError, match="amqp-keygen does not exist. Run deploy/setup.sh"):
        await server.start_server()
    await server.close()


def test_make_up_refuses_to_start_without_the_logins(tmp_path):
    """deploy.run (what `make up` runs) checks every login before anything starts."""
    env = {**os.environ, "SIUI_DATA_DIR": str(tmp_path), "SIUI_AMQP_URL": "amqp://127.0.0.1:5672/"}
    result = subprocess.run([sys.executable, "-m", "deploy.run", "keygen", "console"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "keygen: no broker password" in result.stderr and "console: no broker password" in result.stderr
    guest = {**env, "SIUI_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/"}
    result = subprocess.run([sys.executable, "-m", "deploy.run", "certs"], cwd=ROOT, env=guest,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "logs in as 'guest'" in result.stderr and "guest:guest" not in result.stderr
