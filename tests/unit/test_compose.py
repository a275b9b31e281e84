"""docker-compose.yml, without docker: valid against the Compose Specification, and wired so
that the broker has one user per service and no shared one (broker-setup writes the
definitions the broker loads at boot; services log in with the passwords in /data)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import yaml

from deploy.broker import hash_matches
from shared.broker import SERVICES, secret_path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("console", "keygen", "users", "certs", "ocsp")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def mounts(service: dict) -> dict[str, str]:
    """Target path → source (volume name or host path) of a service's short-form volumes."""
    out = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[target] = source
    return out


def test_the_file_is_valid_against_the_compose_specification():
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                             str(COMPOSE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_service_is_given_a_broker_user_and_the_broker_has_no_default_one():
    services = compose()["services"]
    for name in APP_SERVICES:
        url = services[name]["environment"]["SIUI_AMQP_URL"]
        assert url.startswith("amqp://rabbitmq:5672") and "@" not in url, name
        assert mounts(services[name])["/data"] == "siui-data", name
    environment = services["rabbitmq"].get("environment") or {}
    assert not [key for key in environment if key.startswith("RABBITMQ_DEFAULT_")]


def test_the_broker_loads_the_definitions_broker_setup_writes():
    services = compose()["services"]
    broker, setup = services["rabbitmq"], services["broker-setup"]
    conf_source = mounts(broker)["/etc/rabbitmq/conf.d/20-siui.conf"]
    conf = (ROOT / conf_source).read_text()
    path = PurePosixPath(re.search(r"^definitions\.local\.path = (\S+)$", conf, re.M).group(1))
    assert re.search(r"^definitions\.import_backend = local_filesystem$", conf, re.M)
    assert re.search(r"^loopback_users\.guest = true$", conf, re.M)
    volume = mounts(broker)[str(path.parent)]
    assert volume in compose()["volumes"]
    command = setup["command"]
    assert command[:5] == ["python", "-m", "deploy.broker", "definitions", "--with-users"]
    out = PurePosixPath(command[command.index("--out") + 1])
    assert mounts(setup)[str(out.parent)] == volume and out.name == path.name
    assert mounts(setup)["/data"] == "siui-data"
    assert broker["depends_on"]["broker-setup"]["condition"] == "service_completed_successfully"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy", name
    # The image makes the directory broker-setup writes in its own (a new volume copies it).
    assert re.search(r"install -d -o siui -g siui -m 0755 " + re.escape(str(out.parent)),
                     (ROOT / "deploy" / "Dockerfile").read_text())


def test_broker_setups_command_writes_the_users_and_keeps_their_passwords(tmp_path):
    """Run as compose runs it (its environment, an empty data directory), twice."""
    services = compose()["services"]
    command = services["broker-setup"]["command"]
    environment = {**services["broker-setup"]["environment"], "SIUI_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "definitions.json"
    argv = [sys.executable, *command[1:command.index("--out") + 1], str(out)]
    env = {"PATH": os.environ["PATH"], **{k: str(v) for k, v in environment.items()}}
    seen = []
    for _ in range(2):
        result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        seen.append(json.loads(out.read_text()))
        assert oct(out.stat().st_mode & 0o777) == "0o644"  # the broker's own user reads it
    for described in seen:
        users = {user["name"]: user for user in described["users"]}
        assert set(users) == {f"siui-{service}" for service in SERVICES}
        for service in SERVICES:
            password = secret_path(tmp_path / "data", service).read_text()
            assert hash_matches(users[f"siui-{service}"], password)
            assert password not in out.read_text()
    assert {e["name"] for e in seen[0]["exchanges"]} == {"siui.events", "siui.events.dlx"}
    assert {v["name"] for v in seen[0]["vhosts"]} == {"/"}
