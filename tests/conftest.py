"""Session-wide real infrastructure: PostgreSQL database, RabbitMQ exchange, dev PKI, and
the declared test PKI at the session's start."""
from __future__ import annotations

import uuid

import pytest

from deploy.devpki import ensure_dev_pki
from shared.config import CommonConfig
from tests.support import infra
from tests.support.pki import TestPki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The dev PKI (deploy/devpki.py) the services run with: paths of its files."""
    paths = ensure_dev_pki(tmp_path_factory.mktemp("siui-data"))
    # Services started on this data directory log in to the broker as their own users.
    infra.install_broker_secrets(paths.data_dir)
    return paths


@pytest.fixture(scope="session")
def test_pki() -> TestPki:
    """The declared test PKI (tests/support/pki.py) valid now: for tests whose tools
    check validity against the real clock (openssl, pdfsig, TLS)."""
    return TestPki.current()


@pytest.fixture(scope="session")
async def database_url():
    url = await infra.create_database()
    yield url
    await infra.drop_database(url)


@pytest.fixture(scope="session")
async def events_exchange():
    name = f"siui.test.{uuid.uuid4().hex[:8]}"
    await infra.declare_exchange(name)  # as the set-up does: services may not declare it
    yield name
    await infra.delete_exchange(name)


@pytest.fixture(scope="session")
def common_config(pki, database_url, events_exchange) -> CommonConfig:
    return CommonConfig(database_url=database_url, database_owner_url=infra.owner_url(database_url),
                        amqp_url=infra.amqp_url(), data_dir=pki.data_dir,
                        events_exchange=events_exchange, host="127.0.0.1", log_format="console")


@pytest.fixture(scope="session")
def token_for(pki):
    """``token_for(cas="B", rights=..., username=...)``: a signed operator token."""

    def make(**kw) -> str:
        return infra.make_token(pki.token_signing_key, **kw)

    return make


@pytest.fixture(scope="session")
def auth_for(token_for):
    """``auth_for(cas="B")``: the Authorization header dict for such a token."""

    def make(**kw) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(**kw)}"}

    return make
