"""Run every service in the foreground, as ``make up`` does; stop them all on Ctrl-C/SIGTERM.

Each service is its own process (``python -m services.<name>``), as in production. The
schemas are migrated first, once, and the national admin is created on the first start.
Each service logs in to RabbitMQ as its own user (siui-<service>) with the password
deploy/setup.sh wrote in the data directory; without them nothing starts (they would
refuse every event, or be refused by the broker). If one service dies, the others are
stopped too, so a half-running stack never hides.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

SERVICES = ("users", "keygen", "certs", "ocsp", "console")
STOP_GRACE_SECONDS = 15


async def _run(services: tuple[str, ...]) -> int:
    env = dict(os.environ)
    if not env.get("SIUI_TRUSTED_PROXIES", "").strip() and not env.get("SIUI_KEYGEN_TRUSTED_PROXIES", "").strip():
        # Here every service runs on this host: the console calls the users service from
        # loopback, passing the browser's address on (logins are counted and locked per
        # client address). Believed only from loopback, which only this host can send from.
        env["SIUI_TRUSTED_PROXIES"] = "127.0.0.1,::1"
    procs: dict[str, asyncio.subprocess.Process] = {}
    for name in services:
        # Each in its own process group: a terminal's Ctrl-C (sent to the whole foreground
        # group) reaches only this supervisor, which stops every service once. A second
        # signal in the middle of a graceful stop would cancel its cleanup.
        procs[name] = await asyncio.create_subprocess_exec(sys.executable, "-m", f"services.{name}", env=env,
                                                           process_group=0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waits = {asyncio.create_task(p.wait()): n for n, p in procs.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in done:
        if task in waits:
            print(f"siui: service {waits[task]} exited with {task.result()}; stopping the others",
                  file=sys.stderr, flush=True)
            code = 1
    for proc in procs.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs.values())), STOP_GRACE_SECONDS)
    except asyncio.TimeoutError:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
        await asyncio.gather(*(p.wait() for p in procs.values()))
    stopper.cancel()
    return code


def broker_logins_missing(services: tuple[str, ...], env=None) -> list[str]:
    """Why a service could not log in to the broker as itself (empty: each can try)."""
    from shared.broker import broker_url
    from shared.config import CommonConfig, ConfigError

    common = CommonConfig.from_env(os.environ if env is None else env)
    problems = []
    for name in services:
        try:
            broker_url(common.amqp_url, common.data_dir, name, user_prefix=common.amqp_user_prefix)
        except ConfigError as exc:
            problems.append(f"{name}: {exc}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help=f"services to run (default: all of {', '.join(SERVICES)})")
    args = parser.parse_args()
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown services: {', '.join(unknown)}")
    from deploy.migrate import prepare

    services = tuple(args.services) or SERVICES
    problems = broker_logins_missing(services)
    if problems:
        for problem in problems:
            print(f"siui: {problem}", file=sys.stderr)
        return 2
    prepare()
    return asyncio.run(_run(services))


if __name__ == "__main__":
    sys.exit(main())
