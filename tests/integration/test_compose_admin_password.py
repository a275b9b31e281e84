"""docker-compose.yml tells where the generated admin password is printed, and it is.

In the compose stack the one-shot service that prepares the database also creates the
national admin, before the users service starts; a generated password is printed by
whichever creates the admin, so the comment must name that service. This runs the
command of the service the comment names, as compose would (its own environment, a new
database, no SIUI_ADMIN_PASSWORD), and reads the password off its output.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import infra

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def service_command(compose: str, service: str) -> list[str]:
    """The ``command:`` of a service (a JSON-style list, as every one in the file is)."""
    services = compose[compose.index("\nservices:\n"):]
    block = re.search(rf"^  {re.escape(service)}:\n((?:    .*\n|\n)+)", services, re.M)
    assert block, f"no service {service!r} in {COMPOSE}"
    command = re.search(r"^    command: (\[.*\])$", block.group(1), re.M)
    assert command, f"service {service!r} has no command"
    return json.loads(command.group(1))


def test_the_service_the_compose_file_names_prints_the_generated_admin_password(tmp_path):
    compose = COMPOSE.read_text()
    named = re.findall(r"`docker compose logs (\w[\w-]*)`", compose)
    assert len(named) == 1, named
    command = service_command(compose, named[0])
    database_url = asyncio.run(infra.create_database("siui_compose"))
    try:
        env = {**os.environ, "SIUI_DATABASE_URL": database_url,
               "SIUI_DATABASE_OWNER_URL": infra.owner_url(database_url), "SIUI_DATA_DIR": str(tmp_path / "data"),
               "SIUI_ADMIN_PASSWORD": ""}
        assert command[0] == "python"
        result = subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
    finally:
        asyncio.run(infra.drop_database(database_url))
    assert result.returncode == 0, result.stderr
    assert re.search(r"user 'admin', password '[^']{12,}'", result.stdout), result.stdout
