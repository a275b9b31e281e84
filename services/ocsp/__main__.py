"""``python -m services.ocsp``: run the ocsp service until SIGINT/SIGTERM.

With SIUI_OCSP_WORKERS > 1 (default 2, where SO_REUSEPORT exists) this process starts
that many worker processes, each running the whole app on the same ports (the kernel
spreads connections among them), each with its own in-memory registry kept current
through NOTIFY. This parent only supervises (``shared.supervisor``): a worker that dies
is started again with a growing delay while the others keep answering (the kernel
gives new connections to the sockets still open), a crash loop is reported, and
SIGINT/SIGTERM stop every worker once.
"""
from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import time

from shared.http.serving import GuardedAppRunner
from prometheus_client import multiprocess

from shared.logging import configure_logging, get_logger
from shared.supervisor import ChildSpec, Supervisor, follow_supervisor

from services.ocsp.app import create_app
from services.ocsp.config import Config
from services.ocsp.responder import load_responder_keys
from services.ocsp.responder.front import FrontSite

log = get_logger(__name__)

SHUTDOWN_TIMEOUT = 10.0  # seconds for answers and requests in progress at SIGTERM


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed: it makes the HTTP layer markedly cheaper."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class StartGC:
    """The collector's work from the process's start to the end of the load (the
    ``ocsp_start_gc`` log line: collections, longest pause, total), from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.collections, self.total, self.longest, self._began = 0, 0.0, 0.0, 0.0

    def __call__(self, phase: str, _info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        self.collections += 1
        self.total += pause
        self.longest = max(self.longest, pause)

    def install(self) -> "StartGC":
        gc.callbacks.append(self)
        return self

    def report(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self)
        log.info("ocsp_start_gc", collections=self.collections, max_pause_ms=round(self.longest * 1000, 1),
                 total_ms=round(self.total * 1000, 1))


def _app(config: Config, start_gc: StartGC | None = None):
    app = create_app(config)

    async def freeze(_app) -> None:
        # The registry (one object per certificate) and the loaded code are long-lived:
        # moved out of the collector's sight, a full collection no longer walks them all,
        # which otherwise shows as tens of milliseconds of p99 under load.
        gc.freeze()
        gc.enable()
        if start_gc is not None:
            start_gc.report()

    # aiohttp runs the cleanup contexts (the load among them) as its first on_startup
    # step: this one runs after the load.
    app.on_startup.append(freeze)
    return app


def serve(config: Config) -> None:
    """Run one copy of the app in this process (a worker, or the only process)."""
    # Fewer, larger young-generation collections: each request allocates a few hundred
    # short-lived objects, and the default threshold (700) collects every few requests.
    gc.set_threshold(20_000, 20, 20)
    # No collection during the start: the load makes millions of long-lived objects (the
    # registry), and each collection would walk them all, for nothing (measured by
    # bench.national: 109 collections, 840 ms, the longest 140 ms at 100,000 certificates).
    # Reference counting frees the rows as usual; the freeze then takes what was loaded
    # out of every later collection's sight.
    gc.disable()
    start_gc = StartGC().install()
    configure_logging("ocsp", config.common.log_format)
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        runner.run(_serve(config, start_gc))


async def _serve(config: Config, start_gc: StartGC | None = None) -> None:
    """The app behind the OCSP front on ``config.port`` until SIGINT/SIGTERM.

    Not ``web.run_app``: the front (``services.ocsp.responder.front``) owns the port and hands
    non-OCSP connections to the app's runner, which therefore has no site of its own
    (the :8443 channel has its own runner). Stopping: no new connections, the front's
    answers finished, then ``runner.cleanup()`` (aiohttp's connections, on_shutdown,
    the cleanup contexts in reverse: the log is written out last)."""
    log.info("starting", port=config.port, host=config.common.host)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # from the start: a stop during startup waits for it
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    runner = GuardedAppRunner(_app(config, start_gc), handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
    try:
        await runner.setup()
        site = FrontSite(runner, config.common.host, config.port, reuse_port=config.workers > 1)
        await site.start()
        await stop.wait()
        await site.stop(SHUTDOWN_TIMEOUT)
    finally:
        await runner.cleanup()
    log.info("stopped")


def _metrics_dir() -> str:
    """A fresh private directory (0700) for the workers' prometheus_client files, removed
    when this parent exits. With it every worker's /metrics reports the sum over all
    workers (a scrape lands on one of them); fresh at each start, so nothing carries over."""
    directory = tempfile.mkdtemp(prefix=f"siui-ocsp-metrics-{os.getpid()}-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def supervise(config: Config) -> int:
    """Start ``config.workers`` workers and keep them running; the exit code at the end."""
    configure_logging("ocsp", config.common.log_format)
    # In the workers' environment from their start: prometheus_client picks its
    # multiprocess mode when first imported.
    metrics_dir = _metrics_dir()
    worker_env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    # Each worker is `python -m services.ocsp --worker`, in its own process group.
    workers = [ChildSpec(f"ocsp-worker-{n}", (sys.executable, "-m", "services.ocsp", "--worker"), worker_env)
               for n in range(1, config.workers + 1)]

    def report(event: str, fields: dict) -> None:
        (log.error if event in ("child_died", "crash_loop", "child_killed") else log.info)(
            f"ocsp_workers_{event}", port=config.port, **fields)

    def gone(pid: int) -> None:
        multiprocess.mark_process_dead(pid, metrics_dir)  # its live gauges no longer count

    supervisor = Supervisor(workers, report=report, on_exit=gone, first_delay=0.2, max_delay=10.0,
                            stop_grace=SHUTDOWN_TIMEOUT + 5)
    return asyncio.run(supervisor.run())


def check_responder_keys(config: Config) -> bool:
    """Load the responder's identities once before any worker starts (and close them): a
    key that does not match, a token that refuses, a next signer that cannot take over,
    each stops the start with one clear log line instead of a crash loop of workers."""
    try:
        load_responder_keys(config).close()
    except ValueError as exc:
        configure_logging("ocsp", config.common.log_format)
        log.error("ocsp_responder_keys_unusable", error=str(exc))
        return False
    return True


def main(argv: list[str]) -> int:
    config = Config.from_env()
    if "--worker" not in argv and not check_responder_keys(config):
        return 2
    # A worker whose parent was killed (SIGKILL, OOM) stops too; so does this parent when
    # make up's runner is killed.
    follow_supervisor()
    if config.workers == 1 or "--worker" in argv:
        serve(config)
        return 0
    return supervise(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
