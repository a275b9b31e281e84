"""The README's five-minute walk, run as written (bash, curl, pdfsig, openssl) against
a stack of its own, on that stack's ports: it must end with "good", then "revoked,
Reason: certificateHold". The walk waits for each change to reach the responder (it
arrives by event, just after the API has answered) instead of asking once at once.

Its own stack and database: the walk registers the demo provider and its certificate,
which the seed-flow test registers too on the session's stack.
"""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import infra
from tests.support.stack import HTTP_SERVICES, start_stack

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"
PORTS = {"console": 8100, "keygen": 8101, "users": 8102, "certs": 8103, "ocsp": 8104}


def walk_script() -> str:
    text = README.read_text()
    section = text[text.index("## Five minutes through the seed's flow"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def walk_stack(pki):
    database_url = asyncio.run(infra.create_database("siui_readme_walk"))
    exchange = f"siui.readme-walk.{uuid.uuid4().hex[:8]}"
    running = start_stack(pki.data_dir, database_url, exchange, name="readme-walk",
                          extra_env={"SIUI_ADMIN_PASSWORD": "secret"})
    yield running
    code = running.stop()
    asyncio.run(infra.drop_database(database_url))
    asyncio.run(infra.delete_exchange(exchange))
    assert code == 0, f"the stack did not stop cleanly ({code}); see {running.log_path}"


def test_the_readme_walk_ends_good_then_revoked(walk_stack, pki, tmp_path):
    script = walk_script()
    for service in HTTP_SERVICES:
        port = walk_stack.ports[service]
        script = script.replace(f"localhost:{PORTS[service]}", f"localhost:{port}")
        script = script.replace(f"127.0.0.1:{PORTS[service]}", f"127.0.0.1:{port}")
    assert not re.search(r":810[0-4]\b", script), script  # every port replaced
    (tmp_path / ".siui").symlink_to(pki.data_dir)  # the walk reads .siui/pki/...
    result = subprocess.run(["bash", "-o", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "LC_ALL": "C.UTF-8"})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    good = out.find("demo-provider.pem: good")
    revoked = out.find("demo-provider.pem: revoked")
    assert 0 <= good < revoked, out
    assert "Reason: certificateHold" in out[revoked:], out
