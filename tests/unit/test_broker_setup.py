"""deploy.broker: the permission regexes (what each service's user may touch), the password
hashes the broker accepts, and the set-up's plan (idempotent, keeping passwords)."""
from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.broker import (Target, definitions, hash_matches, password_hash, permissions, plan,
                           topic_permissions)
from shared.broker import TOPOLOGY, secret_path, topology
from shared.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HEX = "0123456789abcdef" * 2
EXCHANGES = ["siui.events", "siui.test.ab12cd34", "siui.test.siui_users_events.ab12cd34",
             "siui.e2e.restart.ab12cd34", "siui.console-e2e.ab12cd34"]


def may(pattern: str, name: str) -> bool:
    # Python's re agrees with RabbitMQ's PCRE on everything these use (classes,
    # alternation, lookahead); tests/integration/test_broker_permissions.py asks the broker.
    return re.search(pattern, name) is not None


def queues_of(exchange: str) -> dict[str, str]:
    """Every queue of the topology → its consumer (a dead-letter queue: its queue's
    consumer's, which takes parked events back for a replay)."""
    out = {}
    for spec in TOPOLOGY:
        out[f"{exchange}.{spec.name}"] = spec.service
        out[f"{exchange}.{spec.name}.dlq"] = spec.service
    return out


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_each_user_reads_only_its_own_queues(exchange):
    for user, granted in permissions().items():
        service = user.removeprefix("siui-")
        for queue, consumer in queues_of(exchange).items():
            assert may(granted.read, queue) == (consumer == service), (user, queue)
            assert not may(granted.write, queue), (user, queue)      # no (un)binding of any
            assert not may(granted.configure, queue), (user, queue)  # no declaring, no deleting


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_publishers_write_the_exchange_and_everyone_reads_it_for_the_logout_binding(exchange):
    for user, granted in permissions().items():
        publishes = user != "siui-console"
        assert may(granted.write, exchange) == publishes, user
        assert may(granted.read, exchange), user
        assert not may(granted.configure, exchange), user           # nor may delete it
        for dead in (f"{exchange}.dlx",):
            assert not (may(granted.write, dead) or may(granted.read, dead)), user


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_each_user_has_its_own_revocation_queues_only(exchange):
    for user, granted in permissions().items():
        for service in ("keygen", "users", "certs", "ocsp", "console"):
            queue = f"{exchange}.{service}.revoked.{HEX}"
            own = user == f"siui-{service}"
            assert (may(granted.configure, queue), may(granted.write, queue), may(granted.read, queue)) == \
                (own, own, own), (user, queue)
        assert not may(granted.configure, f"{exchange}.{user[5:]}.revoked.not-hex"), user


@pytest.mark.parametrize("exchange", EXCHANGES)
def test_only_ocsp_has_state_following_queues(exchange):
    """Each ocsp process follows the responders' state on its own queue (issue 14):
    siui-ocsp may declare, bind and read its own; no other user may touch them."""
    for user, granted in permissions().items():
        for service in ("keygen", "users", "certs", "ocsp", "console"):
            queue = f"{exchange}.{service}.follow.{HEX}"
            own = user == "siui-ocsp" == f"siui-{service}"
            assert (may(granted.configure, queue), may(granted.write, queue), may(granted.read, queue)) == \
                (own, own, own), (user, queue)


def test_nothing_outside_the_prefix_nor_the_client_librarys_queue_names():
    for granted in permissions().values():
        for name in ("other.events", "amq.default", "amq.topic", "amq_0123456789abcdef0123456789abcdef",
                     "amq.gen-abc", "siui", "xsiui.events"):
            assert not any(may(p, name) for p in (granted.configure, granted.write, granted.read)), name


def test_another_prefix_moves_every_name():
    granted = permissions("cas-b.siui.", "cas-b-")["cas-b-certs"]
    assert may(granted.read, "cas-b.siui.events.certs.users") and may(granted.write, "cas-b.siui.events")
    assert not may(granted.write, "siui.events")


def test_topic_permissions_publish_own_words_and_bind_the_logout_only():
    topics = topic_permissions()
    assert may(topics["siui-keygen"][0], "keygen.key_issued")
    assert not may(topics["siui-certs"][0], "keygen.key_issued")
    assert not may(topics["siui-console"][0], "users.session_revoked")
    for user, (write, read) in topics.items():
        assert may(read, "users.session_revoked") and not may(read, "#") and not may(read, "users.#")
        # Only ocsp binds the responders' state; nobody may bind the key events of keygen.
        for key in ("certs.certificate_suspended", "certs.issuer_registered", "ocsp.answers_presigned",
                    "ocsp.signer_changed"):
            assert may(read, key) == (user == "siui-ocsp"), (user, key)
        assert not may(read, "keygen.key_issued") and not may(read, "certs.#"), user


def test_the_password_hash_is_rabbitmqs():
    # Exported by RabbitMQ 3.10 for a user whose password was set to "abc".
    exported = "OfyOLUBRFjeJYiDY7lkaXYZhvIiM3G82igfqskCgiks8L8Bw"
    import base64

    assert password_hash("abc", salt=base64.b64decode(exported)[:4]) == exported
    user = {"hashing_algorithm": "rabbit_password_hashing_sha256", "password_hash": exported}
    assert hash_matches(user, "abc") and not hash_matches(user, "abd")
    assert not hash_matches({"hashing_algorithm": "rabbit_password_hashing_sha256", "password_hash": "!!"}, "abc")
    assert not hash_matches({"hashing_algorithm": "unknown", "password_hash": exported}, "abc")


# -- the plan -----------------------------------------------------------------------------------

def target(tmp_path: Path, exchange: str = "siui.events") -> Target:
    return Target(data_dir=tmp_path, vhost="/", exchange=exchange, exchange_prefix="siui.", user_prefix="siui-")


def applied(steps, current, t: Target) -> dict:
    """What the broker holds after rabbitmqctl ran ``steps`` (as deploy/setup.sh does)."""
    users = {u["name"]: dict(u) for u in current.get("users", [])}
    permissions_, topics = list(current.get("permissions", [])), list(current.get("topic_permissions", []))
    out = {**current}
    for step in steps:
        if step[0] in ("add_user", "change_password"):
            password = secret_path(t.data_dir, step[2]).read_text()
            users[step[1]] = {"name": step[1], "hashing_algorithm": "rabbit_password_hashing_sha256",
                              "password_hash": password_hash(password), "tags": []}
        elif step[0] == "clear_user_tags":
            users[step[1]]["tags"] = []
        elif step[0] == "set_permissions":
            permissions_ = [p for p in permissions_ if (p["user"], p["vhost"]) != (step[2], step[1])]
            permissions_.append({"vhost": step[1], "user": step[2], "configure": step[3], "write": step[4],
                                 "read": step[5]})
        elif step[0] == "set_topic_permissions":
            topics.append({"vhost": step[1], "user": step[2], "exchange": step[3], "write": step[4], "read": step[5]})
        elif step[0] == "import_topology":
            for kind, items in definitions(t, with_users=False).items():
                out[kind] = [*out.get(kind, []), *items]
        elif step[0] == "add_vhost":
            out["vhosts"] = [*out.get("vhosts", []), {"name": step[1]}]
    out.update(users=list(users.values()), permissions=permissions_, topic_permissions=topics)
    return out


EMPTY = {"vhosts": [{"name": "/"}], "users": [{"name": "guest", "tags": ["administrator"]}]}


def test_a_fresh_broker_gets_five_users_their_permissions_and_the_topology(tmp_path):
    steps = plan(EMPTY, target(tmp_path))
    assert [s[1] for s in steps if s[0] == "add_user"] == [f"siui-{s}" for s in
                                                          ("keygen", "users", "certs", "ocsp", "console")]
    assert len([s for s in steps if s[0] == "set_permissions"]) == 5
    assert len([s for s in steps if s[0] == "set_topic_permissions"]) == 5
    assert steps[-1] == ("import_topology",)
    for service in ("keygen", "users", "certs", "ocsp", "console"):
        path = secret_path(tmp_path, service)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and re.fullmatch("[0-9a-f]{64}", path.read_text())
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    printed = "\n".join("\t".join(s) for s in steps)
    assert not any(secret_path(tmp_path, s).read_text() in printed for s in ("keygen", "console"))


def test_a_second_run_has_nothing_to_do_and_keeps_the_passwords(tmp_path):
    t = target(tmp_path)
    first = plan(EMPTY, t)
    kept = secret_path(tmp_path, "users").read_text()
    assert plan(applied(first, EMPTY, t), t) == []
    assert secret_path(tmp_path, "users").read_text() == kept


def test_a_password_the_broker_does_not_have_is_given_to_it(tmp_path):
    """A data dir made elsewhere, or a user whose password was changed by hand."""
    t = target(tmp_path)
    state = applied(plan(EMPTY, t), EMPTY, t)
    secret_path(tmp_path, "ocsp").write_text("e" * 64)
    assert plan(state, t) == [("change_password", "siui-ocsp", "ocsp")]


def test_tags_are_cleared_and_changed_permissions_restored(tmp_path):
    t = target(tmp_path)
    state = applied(plan(EMPTY, t), EMPTY, t)
    for user in state["users"]:
        if user["name"] == "siui-certs":
            user["tags"] = ["impersonator"]  # could set any user_id
    for granted in state["permissions"]:
        if granted["user"] == "siui-keygen":
            granted["read"] = ".*"
    steps = plan(state, t)
    assert ("clear_user_tags", "siui-certs") in steps
    assert [s[:3] for s in steps if s[0] == "set_permissions"] == [("set_permissions", "/", "siui-keygen")]


def test_a_queue_of_an_earlier_release_is_replaced_then_imported_anew(tmp_path):
    """Queue arguments cannot change (the old delivery limit was 5): the set-up is told
    to replace the queue, and imports the topology again."""
    t = target(tmp_path)
    state = applied(plan(EMPTY, t), EMPTY, t)
    old = next(q for q in state["queues"] if q["name"] == "siui.events.users.key-issued")
    old["arguments"] = {**old["arguments"], "x-delivery-limit": 5}
    assert plan(state, t) == [("replace_queue", "/", "siui.events.users.key-issued"), ("import_topology",)]


def test_another_exchange_gets_its_topology_and_topic_permissions(tmp_path):
    t = target(tmp_path)
    state = applied(plan(EMPTY, t), EMPTY, t)
    other = target(tmp_path, "siui.events2")
    steps = plan(state, other)
    assert ("import_topology",) in steps and len([s for s in steps if s[0] == "set_topic_permissions"]) == 5
    assert not [s for s in steps if s[0] in ("add_user", "change_password", "set_permissions")]


def test_the_definitions_hold_the_users_hashes_and_the_topology(tmp_path):
    described = definitions(target(tmp_path), with_users=True)
    assert {u["name"] for u in described["users"]} == {f"siui-{s}" for s in
                                                      ("keygen", "users", "certs", "ocsp", "console")}
    for user in described["users"]:
        assert user["tags"] == [] and hash_matches(user, secret_path(tmp_path, user["name"][5:]).read_text())
    assert {q["name"] for q in described["queues"]} == {q["name"] for q in topology("siui.events")["queues"]}
    assert all(item["vhost"] == "/" for kind in ("queues", "exchanges", "bindings", "permissions")
               for item in described[kind])
    text = json.dumps(described)  # hashes only: no password is written here
    assert not any(secret_path(tmp_path, s).read_text() in text for s in ("keygen", "users", "certs", "ocsp", "console"))


def test_an_exchange_outside_the_prefix_is_refused_by_the_set_up():
    with pytest.raises(ConfigError, match="SIUI_AMQP_EXCHANGE_PREFIX"):
        Target.from_env({"SIUI_EVENTS_EXCHANGE": "events"})
    assert Target.from_env({"SIUI_AMQP_URL": "amqp://h:5672/siui%2Fb"}).vhost == "siui/b"


def test_the_plan_command_prints_tab_separated_steps_and_writes_the_topology(tmp_path):
    topology_file = tmp_path / "topology.json"
    result = subprocess.run([sys.executable, "-m", "deploy.broker", "plan", "--topology-file", str(topology_file)],
                            input=json.dumps(EMPTY), capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "SIUI_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert lines[0] == ["add_user", "siui-keygen", "keygen"] and lines[-1] == ["import_topology"]
    assert all(1 <= len(line) <= 6 and all(line) for line in lines)  # what setup.sh reads
    assert json.loads(topology_file.read_text())["exchanges"][0]["name"] == "siui.events"
    garbage = subprocess.run([sys.executable, "-m", "deploy.broker", "plan", "--topology-file", str(topology_file)],
                             input="not json", capture_output=True, text=True, cwd=ROOT, timeout=60,
                             env={"PATH": "/usr/bin:/bin", "SIUI_DATA_DIR": str(tmp_path / "data")})
    assert garbage.returncode == 2 and garbage.stderr.startswith("deploy.broker:")


def test_another_checkout_takes_the_brokers_passwords_instead_of_replacing_them(tmp_path):
    """Checkouts sharing one broker: a second data directory (missing or stale files)
    adopts the passwords the broker has from the first, so that neither locks the other out."""
    first, second = target(tmp_path / "first"), target(tmp_path / "second")
    state = applied(plan(EMPTY, first), EMPTY, first)
    secret_path(second.data_dir, "users").parent.mkdir(parents=True)
    secret_path(second.data_dir, "users").write_text("e" * 64)  # stale: not the broker's
    secret_path(second.data_dir, "users").chmod(0o600)
    assert plan(state, second, adopt_from=(tmp_path / "elsewhere", first.data_dir)) == []
    for service in ("keygen", "users", "certs", "ocsp", "console"):
        assert secret_path(second.data_dir, service).read_text() == secret_path(first.data_dir, service).read_text()
        assert stat.S_IMODE(secret_path(second.data_dir, service).stat().st_mode) == 0o600
    # Without such a checkout, the broker is given this data directory's password.
    third = target(tmp_path / "third")
    assert [s[0] for s in plan(state, third)] == ["change_password"] * 5
