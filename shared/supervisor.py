"""Supervising child processes: a dead one comes back, the others never notice.

Used by the ocsp service's parent for its workers and by ``make up``'s runner
(deploy/run.py) for the services. Each child runs in its own process group (a
terminal's Ctrl-C reaches only the supervisor, which stops every child once).

* A child is *up* once its ``health_url`` answers 200 (a service's /healthz), or, without
  one, once it has run ``stable_after`` seconds.
* A child that exits while the supervisor is not stopping is started again: after
  ``first_delay`` if it was up (a crash or a kill of a working process: back at once),
  after a delay doubling up to ``max_delay`` for each exit in a row before it came up.
  Every exit and restart is reported.
* ``crash_loop`` exits in a row without coming up is a crash loop: reported as such
  (with the last exit status) at each further exit, never hidden, and retried at the
  longest delay, because the cause (a database that is not there yet, a configuration
  being fixed) may go away.
* The child learns how many times its slot was restarted (``SIUI_SUPERVISOR_RESTARTS``)
  and exports it (``siui_supervisor_restarts``), so Prometheus
  sees restarts even of a process that never lived long enough to be scraped twice.
* Stopping: SIGTERM to every child, ``stop_grace`` seconds for them to finish, SIGKILL
  for any still running. A child told its supervisor's pid (``SIUI_SUPERVISOR_PID``)
  dies with it (``follow_supervisor``) instead of lingering when it is killed.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge

RESTARTS_ENV = "SIUI_SUPERVISOR_RESTARTS"
SUPERVISOR_ENV = "SIUI_SUPERVISOR_PID"


@dataclass(frozen=True)
class ChildSpec:
    """One supervised slot: a name for the reports, and the command it runs."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] | None = None  # None: the supervisor's environment
    health_url: str | None = None      # answers 200 once the child is up


@dataclass
class _Slot:
    spec: ChildSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay: float = 0.0
    up: bool = False
    failed_starts: int = 0    # exits in a row before coming up
    watch: asyncio.Task | None = None


Report = Callable[[str, dict], None]


def _print_report(event: str, fields: dict) -> None:
    print(f"siui: {event} " + " ".join(f"{k}={v}" for k, v in fields.items()), file=sys.stderr, flush=True)


class Supervisor:
    """Runs ``children`` until ``stop()`` (or SIGINT/SIGTERM in ``run``)."""

    def __init__(self, children: list[ChildSpec], *, report: Report = _print_report,
                 on_exit: Callable[[int], None] | None = None, first_delay: float = 0.5,
                 max_delay: float = 10.0, stable_after: float = 10.0, crash_loop: int = 5,
                 stop_grace: float = 15.0) -> None:
        self.slots = [_Slot(spec, delay=first_delay) for spec in children]
        self.report = report
        self.on_exit = on_exit  # called with the pid of every child that exited
        self.first_delay, self.max_delay, self.stable_after = first_delay, max_delay, stable_after
        self.crash_loop, self.stop_grace = crash_loop, stop_grace
        self._stopping = asyncio.Event()
        self.total_restarts = 0

    def stop(self) -> None:
        self._stopping.set()

    @property
    def pids(self) -> list[int]:
        return [s.process.pid for s in self.slots if s.process is not None and s.process.returncode is None]

    async def _start(self, slot: _Slot) -> None:
        env = dict(os.environ if slot.spec.env is None else slot.spec.env)
        env[RESTARTS_ENV] = str(slot.restarts)
        env[SUPERVISOR_ENV] = str(os.getpid())
        slot.process = await asyncio.create_subprocess_exec(*slot.spec.argv, env=env, process_group=0)
        slot.started_at = asyncio.get_running_loop().time()
        slot.up = False
        slot.watch = asyncio.create_task(self._watch_up(slot, slot.process))

    async def _watch_up(self, slot: _Slot, process: asyncio.subprocess.Process) -> None:
        """Mark ``slot`` up once its child answers its health URL (or has run long enough)."""
        if slot.spec.health_url is None:
            await asyncio.sleep(self.stable_after)
        else:
            import aiohttp

            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
                while process.returncode is None:
                    try:
                        async with http.get(slot.spec.health_url) as response:
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        pass
                    await asyncio.sleep(0.2)
        if process.returncode is None and slot.process is process:
            slot.up = True
            slot.failed_starts = 0
            slot.delay = self.first_delay

    async def run(self, *, handle_signals: bool = True) -> int:
        """Start every child and keep them running; the exit code once stopped: 0 when
        every child stopped cleanly at the end, else 1."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self.stop)
        for slot in self.slots:
            await self._start(slot)
        self.report("started", {"children": " ".join(f"{s.spec.name}:{s.process.pid}" for s in self.slots)})
        try:
            await asyncio.gather(*(self._keep(slot) for slot in self.slots))
        finally:
            await self._stop_all()
            if handle_signals:
                for signum in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(signum)
        clean = (0, -signal.SIGTERM, -signal.SIGINT)
        return 0 if all(s.process is None or s.process.returncode in clean for s in self.slots) else 1

    async def _keep(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while True:
            stopping = asyncio.ensure_future(self._stopping.wait())
            exited = asyncio.ensure_future(slot.process.wait())
            await asyncio.wait([stopping, exited], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not exited.done():
                exited.cancel()
                return  # stopping: _stop_all ends it
            code = exited.result()
            if self.on_exit is not None:
                self.on_exit(slot.process.pid)
            if self._stopping.is_set():
                return
            now = loop.time()
            if slot.watch is not None:
                slot.watch.cancel()
            if slot.up:
                delay = self.first_delay  # a working process died (a crash, a kill): back at once
            else:
                slot.failed_starts += 1
                delay = slot.delay
                slot.delay = min(slot.delay * 2, self.max_delay)
            looping = slot.failed_starts >= self.crash_loop
            if looping:
                delay = self.max_delay
            fields = {"child": slot.spec.name, "pid": slot.process.pid, "exit": code, "was_up": slot.up,
                      "ran_seconds": round(now - slot.started_at, 2), "restart_in": round(delay, 2),
                      "restarts": slot.restarts + 1}
            if looping:
                self.report("crash_loop", {**fields, "exits_before_up": slot.failed_starts})
            else:
                self.report("child_died", fields)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
                return  # stopped while waiting to restart
            except asyncio.TimeoutError:
                pass
            slot.restarts += 1
            self.total_restarts += 1
            await self._start(slot)
            self.report("child_restarted", {"child": slot.spec.name, "pid": slot.process.pid,
                                            "restarts": slot.restarts})

    async def _stop_all(self) -> None:
        for slot in self.slots:
            if slot.watch is not None:
                slot.watch.cancel()
        running = [s.process for s in self.slots if s.process is not None and s.process.returncode is None]
        for process in running:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not running:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in running)), self.stop_grace)
        except asyncio.TimeoutError:
            for process in running:
                if process.returncode is None:
                    self.report("child_killed", {"pid": process.pid, "after_seconds": self.stop_grace})
                    process.kill()
            await asyncio.gather(*(p.wait() for p in running))
        for process in running:
            if self.on_exit is not None:
                self.on_exit(process.pid)


def follow_supervisor() -> None:
    """In a supervised child: die (SIGTERM) when the supervisor dies, as a kill -9 of it
    would otherwise leave the child running with nobody to stop it (Linux only)."""
    supervisor = os.environ.get(SUPERVISOR_ENV, "")
    if not supervisor.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != int(supervisor):  # it died before the prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def restarts() -> int:
    """How many times this process's slot was restarted by its supervisor (0: first start)."""
    raw = os.environ.get(RESTARTS_ENV, "0")
    return int(raw) if raw.isdigit() and len(raw) < 10 else 0


#: ``restarts()`` of each live process, summed (the ocsp workers' slots add up): set when
#: the app is made (shared.http.operational.base_app), so Prometheus sees restarts even of
#: a process that never lived long enough to be scraped twice.
SUPERVISOR_RESTARTS = Gauge("siui_supervisor_restarts", "Times this process's slot was restarted by its "
                            "supervisor after an exit (summed over the service's live processes)",
                            multiprocess_mode="livesum")
