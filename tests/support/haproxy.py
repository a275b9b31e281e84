"""A real HAProxy (Debian's /usr/sbin/haproxy) for tests: deploy/haproxy's own
configuration in front of two test stacks, on free loopback ports, in the foreground,
stopped by its own pid afterwards.

Only addresses change (``balancer_config``): each ``bind :<service port>`` becomes a free
port on 127.0.0.1, each ``app1``/``app2`` server the first or second stack's port for that
service (its check port too). Every timeout, retry, check and header stays the deployed
one; ``balancer_config`` fails if the deployed file no longer has what it substitutes.
"""
from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.config import SERVICE_PORTS
from tests.support.infra import free_port
from tests.support.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = "/usr/sbin/haproxy"
#: The deployed file's ports → the stacks' port names.
PORT_NAMES = {port: name for name, port in SERVICE_PORTS.items()}


def balancer_config(text: str, stacks: tuple[Stack, Stack], ports: dict[str, int]) -> str:
    """The deployed configuration, listening on ``ports`` (service → port) and balancing
    over the two ``stacks``."""
    def bind(match: re.Match) -> str:
        return f"    bind 127.0.0.1:{ports[PORT_NAMES[int(match.group(1))]]}"

    text, binds = re.subn(r"^    bind :(\d+)$", bind, text, flags=re.M)

    def server(match: re.Match) -> str:
        stack = stacks[int(match.group(1)) - 1]
        port = stack.ports[PORT_NAMES[int(match.group(2))]]
        rest = re.sub(r"check port (\d+)", lambda m: f"check port {stack.ports[PORT_NAMES[int(m.group(1))]]}",
                      match.group(3))
        return f"    server app{match.group(1)} 127.0.0.1:{port}{rest}"

    text, servers = re.subn(r"^    server app([12]) app[12]\.siui\.internal:(\d+)(.*)$", server, text, flags=re.M)
    if binds != len(PORT_NAMES) or servers != 2 * len(PORT_NAMES):
        raise AssertionError(f"deploy/haproxy/haproxy.cfg changed shape: {binds} binds, {servers} servers")
    return text


@dataclass
class Balancer:
    ports: dict[str, int]
    process: subprocess.Popen
    log_path: Path

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)  # a soft stop: finish what is in flight
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_listening(balancer: Balancer, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    pending = set(balancer.ports.values())
    while pending:
        if balancer.process.poll() is not None:
            raise AssertionError(f"haproxy exited with {balancer.process.returncode}: {balancer.log_path.read_text()}")
        if time.monotonic() > end:
            raise AssertionError(f"haproxy not listening on {sorted(pending)} within {timeout:.0f}s")
        for port in list(pending):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                pending.discard(port)
        time.sleep(0.05)


@contextlib.contextmanager
def running_balancer(stacks: tuple[Stack, Stack], work: Path):
    ports = {name: free_port() for name in SERVICE_PORTS}
    config = work / "haproxy.cfg"
    config.write_text(balancer_config(CONFIG.read_text(), stacks, ports))
    checked = subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], capture_output=True, text=True, timeout=30)
    if checked.returncode != 0:
        raise AssertionError(f"haproxy -c: {checked.stderr}")
    log_path = work / "haproxy.log"
    with open(log_path, "wb") as log:
        # -db: in the foreground, the pid ours to stop.
        process = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    balancer = Balancer(ports, process, log_path)
    try:
        _wait_listening(balancer)
        yield balancer
    finally:
        balancer.stop()
