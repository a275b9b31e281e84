"""Broker.is_connected says whether the link is up now, not only whether it was closed for
good: a robust connection that lost its node is reconnecting, neither closed nor connected
(found when /readyz said a service's broker was fine while it reconnected)."""
from __future__ import annotations

import asyncio

from shared.broker import Broker


class RobustConnectionStandIn:
    def __init__(self) -> None:
        self.is_closed = False
        self.connected = asyncio.Event()


def broker(connection) -> Broker:
    return Broker(connection, channel=None, exchange=None, exchange_name="siui.test", user="siui-certs")


async def test_a_connection_up_is_connected():
    connection = RobustConnectionStandIn()
    connection.connected.set()
    assert broker(connection).is_connected


async def test_a_connection_reconnecting_is_not_connected():
    connection = RobustConnectionStandIn()  # lost: connected cleared, not closed
    assert not broker(connection).is_connected


async def test_a_connection_closed_for_good_is_not_connected():
    connection = RobustConnectionStandIn()
    connection.connected.set()
    connection.is_closed = True
    assert not broker(connection).is_connected
