"""The ocsp app on the session's PostgreSQL and RabbitMQ, served as each test module needs
it (one app per module and edge: starting one costs about a second), and certs' events
fed to it on the real exchange."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.ocsp.app import create_app
from services.ocsp.config import Config
from shared.license import load_pepper
from tests.support.ocsp_harness import EDGES, Issuer, registered, serve
from tests.support.ocsp_online import Harness


@pytest.fixture(scope="module")
def ocsp_config(common_config) -> Config:
    return Config(common=common_config, port=0, tls_port=0, workers=1)


@pytest.fixture(scope="module", params=EDGES)
def edge(request) -> str:
    """Where the OCSP port's requests meet the app: aiohttp's own site, or the front
    (services.ocsp.responder.front), which production serves :8104 through."""
    return request.param


@pytest.fixture(scope="module")
async def client(edge, ocsp_config):
    """A client of the ocsp app served through ``edge``."""
    async with serve(edge, create_app(ocsp_config)) as client:
        yield client


@pytest.fixture(scope="module")
async def served(ocsp_config):
    """The app behind the front on a real socket (``host``, ``port``, ``app``), for tests
    of what travels on the connection."""
    async with serve("front", create_app(ocsp_config)) as client:
        yield client.server


@pytest.fixture
async def ca(feed) -> Issuer:
    """A CA of this test alone, published as certs publishes a new issuer."""
    ca = Issuer.new("Responder Test CA")
    await feed.issuer(ca)
    return ca


@pytest.fixture
async def good(served, feed):
    """A registered CA and a good certificate of it, known to the app: (issuer, leaf)."""
    ca = Issuer.new("Front Test CA")
    leaf = ca.issue("front one")
    await feed.issuer(ca)
    await feed.certificate(ca, leaf.serial)
    await registered(served.app, ca, leaf.serial)
    return ca, leaf


@pytest.fixture(scope="module")
async def harness(common_config, pki, feed, tmp_path_factory):
    """The ocsp app with its :8443 online channel (aiohttp's test server for :8104)."""
    config = Config(common=common_config, port=0, tls_port=0, workers=1)
    async with TestClient(TestServer(create_app(config))) as client:
        yield Harness(client, feed, load_pepper(pki.license_pepper), pki.root_ca_cert,
                      tmp_path_factory.mktemp("ocsp-online"))


@pytest.fixture(scope="session")
def softhsm(pki):
    """A real SoftHSM2 token in the session's data directory (deploy.hsm, as a developer
    makes one), with three keys made inside it: ``responder`` (EC P-256), ``responder-rsa``
    and ``next`` (EC), each with its certificate from the dev root: label → certificate path.

    SoftHSM2 reads SOFTHSM2_CONF once per process, so the variable is set for the whole
    session (the ocsp processes the tests start inherit it)."""
    from deploy.hsm import SoftHsm, issue_certificate

    hsm = SoftHsm.in_data_dir(pki.data_dir)
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ.update(hsm.env())
    certificates = {label: issue_certificate(pki.data_dir, hsm, label, pki.data_dir / "pki" / f"hsm-{label}.pem",
                                             kind="rsa" if label.endswith("rsa") else "ec")
                    for label in ("responder", "responder-rsa", "next")}
    yield SimpleNamespace(hsm=hsm, certificates=certificates)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
