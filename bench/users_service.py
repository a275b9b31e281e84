"""The users service of a users benchmark: the real app on a free port, against a
scratch database and exchange of its own and a dev PKI in a temporary folder, all
removed afterwards (``bench.login_storm``, ``bench.users_list``)."""
from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from deploy.devpki import DevPki, ensure_dev_pki
from services.users.app import create_app
from services.users.config import Config
from shared.config import CommonConfig
from tests.support import infra

ADMIN_PASSWORD = "parola-bench-2026"


@dataclass(frozen=True)
class UsersService:
    base: str          # http://127.0.0.1:<port>
    pki: DevPki        # its keys: tokens are signed with pki.token_signing_key


@contextlib.asynccontextmanager
async def users_service(database: str, *, prepare: Callable[[str], Awaitable[None]] | None = None,
                        trusted_proxies: frozenset[str] = frozenset(), **app_options) -> AsyncIterator[UsersService]:
    """``prepare(database_url)`` runs before the app starts (to load rows); the
    ``app_options`` go to ``create_app`` (e.g. a cheaper ``hasher``)."""
    database_url = await infra.create_database(database)
    exchange = f"siui.bench.{uuid.uuid4().hex[:8]}"
    runner = None
    try:
        if prepare is not None:
            await prepare(database_url)
        with tempfile.TemporaryDirectory() as tmp:
            pki = ensure_dev_pki(Path(tmp))
            infra.install_broker_secrets(pki.data_dir)  # users logs in as siui-users
            await infra.declare_exchange(exchange)  # as the set-up does: services may not
            common = CommonConfig(database_url=database_url, database_owner_url=infra.owner_url(database_url),
                                  amqp_url=infra.amqp_url(), data_dir=pki.data_dir,
                                  events_exchange=exchange, host="127.0.0.1", log_format="json")
            if trusted_proxies:
                common = dataclasses.replace(common, trusted_proxies=trusted_proxies)
            runner = web.AppRunner(create_app(Config(common=common, port=0, admin_password=ADMIN_PASSWORD),
                                              **app_options), access_log=None)
            await runner.setup()
            port = infra.free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield UsersService(f"http://127.0.0.1:{port}", pki)
    finally:
        if runner is not None:
            await runner.cleanup()
        await infra.delete_exchange(exchange)
        await infra.drop_database(database_url)
