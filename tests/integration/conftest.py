"""Fixtures the integration suites share."""
from __future__ import annotations

import pytest

from tests.support import infra
from tests.support.ocsp_harness import Feed


@pytest.fixture(scope="module")
async def feed(common_config):
    """certs' (and keygen's, users') events, each published as its publisher's broker user."""
    publishers = infra.Publishers(common_config.events_exchange)
    yield Feed(publishers)
    await publishers.close()
