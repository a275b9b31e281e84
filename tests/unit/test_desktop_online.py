"""The online channel seen from the desktop: what each answer means for the semaphore,
and the heartbeat loop (with a scripted server passed in; no network)."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import threading
import time

from clients.desktop.activation import Activation
from clients.desktop.backoff import Schedule
from clients.desktop.online import OnlineChannel, Status, keep_online
from clients.desktop.transport import Reply, TlsRejected, Unreachable

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
ACTIVATION = Activation("12433636_CAS-B", "B", "12433636", "SC DEMO MEDICAL SRL",
                        "AAAAA-BBBB-CCCC-DDDD", "2026-03-01T09:00:00+00:00")


def online(token="t1", expires=NOW + timedelta(minutes=15)) -> Reply:
    return Reply(200, {}, {"semaphore": "online", "session_token": token, "expires_at": expires.isoformat(),
                           "username": "12433636_CAS-B", "cas": "B", "message": "Conectat online."})


def offline(reason: str, message: str = "") -> Reply:
    return Reply(401, {}, {"semaphore": "offline", "reason": reason, "message": message})


class Server:
    """Answers in order; remembers what was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, url, payload, *, headers, context, timeout):
        self.calls.append((url.rsplit("/", 1)[-1], headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def channel(server: Server, activation=ACTIVATION, now=NOW, language="ro") -> OnlineChannel:
    return OnlineChannel("https://siui:8443/", context=None, activation=lambda: activation,
                         post=server, clock=lambda: now, language=language)


def test_connect_sends_the_external_user_and_serial_and_goes_online():
    server = Server(online())
    status = channel(server, language="en").connect()
    assert status.online and status.session_token == "t1" and status.message == "Conectat online."
    path, headers = server.calls[0]
    assert path == "connect" and headers["Accept-Language"] == "en"
    assert headers["Authorization"] == "Basic " + base64.b64encode(
        b"12433636_CAS-B:AAAAA-BBBB-CCCC-DDDD").decode()


def test_a_refusal_is_offline_with_the_servers_reason_and_message():
    status = channel(Server(offline("certificate_not_registered", "nu este înregistrat"))).connect()
    assert (status.semaphore, status.reason, status.message) == (
        "offline", "certificate_not_registered", "nu este înregistrat")


def test_the_heartbeat_carries_the_session_and_takes_a_fresh_token():
    server = Server(online("t2"))
    status = channel(server).heartbeat(Status("online", session_token="t1", expires_at=NOW + timedelta(1)))
    assert server.calls[0][0] == "heartbeat" and server.calls[0][1]["Authorization"] == "Bearer t1"
    assert status.online and status.session_token == "t2"


def test_a_suspension_noticed_by_the_heartbeat_is_shown_as_it_is():
    server = Server(offline("certificate_suspended"))
    status = channel(server).heartbeat(Status("online", session_token="t1"))
    assert status.reason == "certificate_suspended" and len(server.calls) == 1


def test_a_refused_session_is_followed_at_once_by_a_new_connect():
    server = Server(offline("session_expired"), online("t9"))
    status = channel(server).heartbeat(Status("online", session_token="t1"))
    assert [c[0] for c in server.calls] == ["heartbeat", "connect"]
    assert status.online and status.session_token == "t9"


def test_a_session_past_its_expiry_reconnects_instead_of_beating():
    server = Server(online("t3"))
    channel(server).heartbeat(Status("online", session_token="t1", expires_at=NOW - timedelta(seconds=1)))
    assert [c[0] for c in server.calls] == ["connect"]


def test_no_answer_at_all_is_offline_with_the_clients_own_reason():
    assert channel(Server(Unreachable("connection refused"))).connect().reason == "unreachable"
    assert channel(Server(TlsRejected("bad certificate"))).connect().reason == "tls_rejected"
    assert channel(Server(Reply(503))).connect().reason == "server_error"
    assert channel(Server(Reply(404))).connect().reason == "protocol"


def test_throttling_waits_at_least_as_long_as_the_server_asks():
    status = channel(Server(Reply(429, {"retry-after": "120"}))).connect()
    assert status.reason == "throttled" and status.retry_after == 120
    schedule = Schedule(1.0, random=lambda: 0.5)
    # 120 s, then spread over as long again: 120 + 0.5 × 120.
    assert schedule.next_delay(online=False, confirmed=False, retry_after=status.retry_after) == 180.0


def test_a_server_busy_names_its_wait_too_and_an_http_date_is_read():
    status = channel(Server(Reply(503, {"retry-after": "7"}))).connect()
    assert (status.reason, status.retry_after) == ("server_error", 7)
    date = "Sun, 01 Mar 2026 10:01:00 GMT"  # NOW + 60 s
    assert channel(Server(Reply(429, {"retry-after": date}))).connect().retry_after == 60
    assert channel(Server(Reply(429, {"retry-after": "99999999"}))).connect().retry_after == 3600
    assert channel(Server(Reply(429, {"retry-after": "soon"}))).connect().retry_after == 30


def test_a_reason_the_client_does_not_know_is_shown_with_the_servers_words():
    server = Server(offline("renewal_pending", "Certificatul reînnoit așteaptă aprobarea."))
    status = channel(server).heartbeat(Status("online", session_token="t1"))
    assert (status.reason, status.message) == ("renewal_pending", "Certificatul reînnoit așteaptă aprobarea.")
    assert len(server.calls) == 1  # not a session problem: no reconnect


def test_the_servers_warning_and_certificate_expiry_are_kept_and_bounded():
    reply = online()
    reply.body.update({"warning": "Certificatul expiră la 2026-03-20." + "!" * 2000,
                       "certificate_expires_at": "2026-03-20T00:00:00+00:00"})
    status = channel(Server(reply)).connect()
    assert status.warning.startswith("Certificatul expiră la 2026-03-20.") and len(status.warning) == 500
    assert status.certificate_expires_at == datetime(2026, 3, 20, tzinfo=timezone.utc)
    coded = online()
    coded.body["warning"] = {"code": "certificate_expiring"}
    assert channel(Server(coded)).connect().warning == "certificate_expiring"


def test_never_more_than_one_attempt_in_flight_even_from_two_loops():
    in_flight, most = 0, 0
    lock = threading.Lock()

    def slow(url, payload, *, headers, context, timeout):
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return online()

    channels = [OnlineChannel("https://siui:8443", None, activation=lambda: ACTIVATION, post=slow,
                              clock=lambda: NOW) for _ in range(2)]
    threads = [threading.Thread(target=c.connect) for c in channels for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_without_an_activation_nothing_is_sent():
    server = Server()
    assert channel(server, activation=None).connect().reason == "not_activated"
    assert server.calls == []


def test_the_loop_follows_a_suspension_and_a_reinstatement_then_stops_when_asked():
    server = Server(online("t1"), online("t2"), offline("certificate_suspended"),
                    offline("certificate_suspended"), online("t3"), online("t4"))
    shown: list[Status] = []
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(waits) == 6

    last = keep_online(channel(server), shown.append, schedule=Schedule(1.0, random=lambda: 0.5),
                       wait=wait)
    assert [c[0] for c in server.calls] == ["connect", "heartbeat", "heartbeat", "connect", "connect",
                                            "heartbeat"]
    assert [s.semaphore for s in shown] == ["online", "online", "offline", "offline", "online", "online"]
    assert last.online and last.session_token == "t4"
    # A new session's first heartbeat at its own phase (0.5 of the interval), then every
    # interval; offline, the backoff's ceiling doubles (0.5 of 2 s, then of 4 s).
    assert waits == [0.5, 1.0, 1.0, 2.0, 0.5, 1.0]
    assert shown[2].next_attempt_at == NOW + timedelta(seconds=1.0)


def test_once_connects_shows_and_returns():
    shown: list[Status] = []
    status = keep_online(channel(Server(offline("wrong_key"))), shown.append, schedule=Schedule(1.0),
                         wait=lambda s: False, once=True)
    assert status.reason == "wrong_key" and shown == [status]
