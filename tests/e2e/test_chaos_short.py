"""The fault suite's short version (issue 13), inside ``make test``: four of ``make
chaos``'s scenarios with a smaller load, on the suite's own PostgreSQL and RabbitMQ
(never the machine's), each held to the targets:

- an ocsp worker killed: OCSP never silent more than 1 s, the worker back;
- the users service killed: deploy.run brings it back, every key gets its user;
- the broker restarted (stop_app, start_app): events flow again within 2 s;
- the database restarted (pg_ctl restart -m fast): no 500, events flow within 2 s;

and in each: nothing missing, nothing doubled, no 5xx but 503 with Retry-After. The
ledger of the run is written to test-artifacts/chaos-short/ledger.md (and .json).
"""
from __future__ import annotations

import pytest

from tests.chaos import ledger
from tests.chaos.faults import SCENARIOS
from tests.chaos.scenarios import run_scenario
from tests.chaos.session import ROOT, Session

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts" / "chaos-short"
SHORT = ("kill-ocsp-worker", "kill-users", "broker-stop-app", "pg-restart-fast")
RESULTS: list[ledger.Result] = []


@pytest.fixture(scope="module")
async def chaos():
    async with Session(certs=8, artifacts=ARTIFACTS) as session:
        yield session
    if RESULTS:
        ledger.write(RESULTS, ARTIFACTS, "The short version inside `make test` (tests/e2e/test_chaos_short.py).\n")


@pytest.mark.parametrize("name", SHORT)
async def test_fault_is_survived(chaos, name):
    result = await run_scenario(chaos, SCENARIOS[name], keys_per_second=2.0, changes_per_second=3.0,
                                warmup=2.0, after=2.0, outage=4.0)
    RESULTS.append(result)
    assert result.verdict == "PASS", f"{name}:\n" + ledger.table([result])
