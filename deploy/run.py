"""Run every service in the foreground, as ``make up`` does; stop them all on Ctrl-C/SIGTERM.

Each service is its own process (``python -m services.<name>``), as in production. The
schemas are migrated first, once, and the national admin is created on the first start.
Each service logs in to RabbitMQ as its own user (siui-<service>) with the password
deploy/setup.sh wrote in the data directory; without them nothing starts (they would
refuse every event, or be refused by the broker). A service that dies is started again
(``shared.supervisor``: a growing delay, a crash loop reported) while the others keep
running, and this output says so each time: ``siui: child_died child=users exit=-9 ...``,
``siui: child_restarted ...``, ``siui: crash_loop ...``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

from shared.config import service_port
from shared.supervisor import ChildSpec, Supervisor

SERVICES = ("users", "keygen", "certs", "ocsp", "console")
STOP_GRACE_SECONDS = 15


async def _run(services: tuple[str, ...]) -> int:
    env = dict(os.environ)
    if not env.get("SIUI_TRUSTED_PROXIES", "").strip() and not env.get("SIUI_KEYGEN_TRUSTED_PROXIES", "").strip():
        # Here every service runs on this host: the console calls the users service from
        # loopback, passing the browser's address on (logins are counted and locked per
        # client address). Believed only from loopback, which only this host can send from.
        env["SIUI_TRUSTED_PROXIES"] = "127.0.0.1,::1"
    # The development set-up serves CRLs locally (tests, demos): the certs fetcher may ask
    # loopback here. Production runs the services its own way, where the default is no.
    env.setdefault("SIUI_CERTS_CRL_ALLOW_LOOPBACK", "true")
    # A service is up once its /healthz answers, where it listens (0.0.0.0 includes loopback).
    host = env.get("SIUI_HOST", "").strip() or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    children = [ChildSpec(name, (sys.executable, "-m", f"services.{name}"), env,
                          health_url=f"http://{host}:{service_port(env, name)}/healthz") for name in services]
    return await Supervisor(children, stop_grace=STOP_GRACE_SECONDS).run()


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
