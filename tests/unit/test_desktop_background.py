"""Work off the window's thread: results come back only through the drained queue, late
ones of a finished topic are dropped, and the online loop stops when asked."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from clients.desktop.activation import Activation
from clients.desktop.background import Background, OnlineSession
from clients.desktop.backoff import Schedule
from clients.desktop.online import OnlineChannel
from clients.desktop.transport import Reply

ACTIVATION = Activation("12433636_CAS-B", "B", "12433636", "SC DEMO", "AAAAA-BBBB-CCCC-DDDD", "2026-03-01")


def drain_until(background: Background, done, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "no result delivered"
        background.drain()
        time.sleep(0.005)


def test_a_result_is_delivered_on_the_draining_thread_only():
    background = Background()
    seen: list[tuple[object, str]] = []
    background.run(lambda: 42, lambda value: seen.append((value, threading.current_thread().name)))
    time.sleep(0.05)
    assert seen == []  # nothing happens behind the window's back
    drain_until(background, lambda: seen)
    assert seen == [(42, threading.current_thread().name)]


def test_a_failure_is_delivered_as_the_exception():
    background = Background()
    errors: list[Exception] = []
    background.run(lambda: 1 / 0, lambda value: None, errors.append)
    drain_until(background, lambda: errors)
    assert isinstance(errors[0], ZeroDivisionError)


def test_results_of_a_topic_begun_again_are_dropped():
    background = Background()
    release = threading.Event()
    seen: list[str] = []
    background.run(lambda: release.wait(5) and "late", seen.append, topic="wizard")
    background.begin("wizard")  # the person cancelled the wizard meanwhile
    background.run(lambda: "other", seen.append, topic="connect")
    release.set()
    drain_until(background, lambda: "other" in seen)
    time.sleep(0.05)
    background.drain()
    assert seen == ["other"]


def test_the_online_session_shows_statuses_and_stops_at_its_next_wait():
    background = Background()
    calls: list[str] = []

    def post(url, payload, *, headers, context, timeout):
        calls.append(url.rsplit("/", 1)[-1])
        return Reply(200, {}, {"semaphore": "online", "session_token": "t"})

    channel = OnlineChannel("https://siui:8443", None, activation=lambda: ACTIVATION, post=post,
                            clock=lambda: datetime.now(timezone.utc))
    shown = []
    session = OnlineSession(background, channel, Schedule(0.01), shown.append)
    session.start()
    drain_until(background, lambda: len(shown) >= 3)
    assert shown[0].online and calls[0] == "connect" and "heartbeat" in calls
    session.stop()
    assert session.join(5)
    count = len(shown)
    background.drain()
    assert len(shown) == count  # nothing shown after Deconectare
    with pytest.raises(RuntimeError):
        session.start()
