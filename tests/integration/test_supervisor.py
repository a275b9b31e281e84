"""shared.supervisor with real child processes: a dead child comes back while the others
keep running, a crash loop is reported (and retried), the restart count reaches the
child, a stop ends every child, and one that ignores SIGTERM is killed in bounded time."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import pytest

from shared.supervisor import RESTARTS_ENV, ChildSpec, Supervisor
from tests.support.infra import free_port
from tests.support.wait import eventually

SLEEPER = (sys.executable, "-c", "import time\nwhile True: time.sleep(1)")
QUITTER = (sys.executable, "-c", "import sys; sys.exit(3)")
def stubborn(ready) -> tuple[str, ...]:
    """A child that ignores SIGTERM, and says so in ``ready`` once it does."""
    return (sys.executable, "-c", "import signal, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                  f"open({str(ready)!r}, 'w').close()\nwhile True: time.sleep(1)")


class Reports(list):
    def __call__(self, event: str, fields: dict) -> None:
        self.append((event, fields))

    def of(self, event: str) -> list[dict]:
        return [fields for name, fields in self if name == event]


async def _async(value):
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_killed_child_is_restarted_and_the_other_never_stops():
    reports = Reports()
    exited: list[int] = []
    supervisor = Supervisor([ChildSpec("a", SLEEPER), ChildSpec("b", SLEEPER)], report=reports,
                            on_exit=exited.append, first_delay=0.1)
    running = asyncio.create_task(supervisor.run(handle_signals=False))
    try:
        await eventually(lambda: _async(len(supervisor.pids) == 2), what="both children started")
        a, b = (slot.process.pid for slot in supervisor.slots)
        os.kill(a, signal.SIGKILL)
        await eventually(lambda: _async(bool(reports.of("child_restarted"))), what="a restarted")
        died = reports.of("child_died")[0]
        assert (died["child"], died["pid"], died["exit"]) == ("a", a, -signal.SIGKILL)
        assert exited == [a]
        new_a = supervisor.slots[0].process.pid
        assert new_a != a and alive(new_a) and alive(b) and supervisor.slots[1].process.pid == b
        # The child knows it is a restart.
        environ = open(f"/proc/{new_a}/environ", "rb").read().split(b"\0")
        assert f"{RESTARTS_ENV}=1".encode() in environ
    finally:
        supervisor.stop()
        assert await asyncio.wait_for(running, 20) == 0
    assert not alive(new_a) and not alive(b)


async def test_a_crash_loop_is_reported_and_still_retried():
    reports = Reports()
    supervisor = Supervisor([ChildSpec("quitter", QUITTER)], report=reports, first_delay=0.05, max_delay=0.4,
                            crash_loop=4)
    running = asyncio.create_task(supervisor.run(handle_signals=False))
    try:
        await eventually(lambda: _async(len(reports.of("crash_loop")) >= 2), timeout=20, what="crash loop reported")
        died = reports.of("child_died")
        assert [d["exit"] for d in died] == [3, 3, 3]  # before the loop: each death reported
        # Growing delays: 0.05, 0.1, 0.2; in the loop, the longest.
        assert [d["restart_in"] for d in died] == [0.05, 0.1, 0.2]
        loop = reports.of("crash_loop")[0]
        assert loop["exits_before_up"] == 4 and loop["restart_in"] == 0.4 and not loop["was_up"]
        restarts_before = supervisor.total_restarts
        await eventually(lambda: _async(supervisor.total_restarts > restarts_before), what="retried in the loop")
    finally:
        supervisor.stop()
        await asyncio.wait_for(running, 20)


async def test_a_working_child_killed_again_and_again_comes_back_at_once_each_time():
    """Up (its health URL answered): each kill is a working process lost, not a failed
    start, so there is no growing delay and no crash loop."""
    port = free_port()
    reports = Reports()
    server = ChildSpec("web", (sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
                       health_url=f"http://127.0.0.1:{port}/")
    supervisor = Supervisor([server], report=reports, first_delay=0.1, max_delay=5.0, crash_loop=3)
    running = asyncio.create_task(supervisor.run(handle_signals=False))
    try:
        for kill in range(5):
            await eventually(lambda: _async(supervisor.slots[0].up), what=f"up before kill {kill}")
            os.kill(supervisor.slots[0].process.pid, signal.SIGKILL)
            await eventually(lambda: _async(len(reports.of("child_restarted")) == kill + 1), what=f"back {kill}")
        assert [d["restart_in"] for d in reports.of("child_died")] == [0.1] * 5
        assert all(d["was_up"] for d in reports.of("child_died")) and not reports.of("crash_loop")
    finally:
        supervisor.stop()
        await asyncio.wait_for(running, 20)


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    reports = Reports()
    ready = tmp_path / "ignoring"
    supervisor = Supervisor([ChildSpec("stubborn", stubborn(ready))], report=reports, stop_grace=1.0)
    running = asyncio.create_task(supervisor.run(handle_signals=False))
    await eventually(lambda: _async(ready.exists()), what="started, ignoring SIGTERM")
    pid = supervisor.pids[0]
    started = time.monotonic()
    supervisor.stop()
    assert await asyncio.wait_for(running, 10) == 1  # killed: not a clean stop
    assert time.monotonic() - started < 5
    assert reports.of("child_killed")[0]["pid"] == pid and not alive(pid)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
async def test_a_child_told_its_supervisors_pid_dies_with_it(tmp_path, signum):
    """follow_supervisor: an ocsp worker whose parent is killed does not linger."""
    ready = tmp_path / "following"
    child = tmp_path / "child.py"
    child.write_text("import time\nfrom shared.supervisor import follow_supervisor\nfollow_supervisor()\n"
                     f"open({str(ready)!r}, 'w').close()\nwhile True:\n    time.sleep(1)\n")
    script = ("import asyncio\nfrom shared.supervisor import ChildSpec, Supervisor\n"
              f"asyncio.run(Supervisor([ChildSpec('c', ({sys.executable!r}, {str(child)!r}))]).run())\n")
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=os.getcwd(),
                                                  env={**os.environ, "PYTHONPATH": os.getcwd()})

    def child_pids() -> list[int]:
        from tests.support.stack import descendants

        return descendants(parent.pid)

    await eventually(lambda: _async(ready.exists()), what="the child following its supervisor")
    children = child_pids()
    assert children
    os.kill(parent.pid, signum)
    await parent.wait()
    await eventually(lambda: _async(not any(alive(pid) for pid in children)), timeout=10,
                     what="the child gone with its supervisor")
