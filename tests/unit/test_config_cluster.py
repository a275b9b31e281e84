"""SIUI_AMQP_URL with a cluster's nodes, SIUI_DATABASE_URL with a primary and standbys."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.broker import broker_url
from shared.config import CommonConfig, ConfigError, database_hosts, split_amqp_urls


def test_several_amqp_urls_by_commas_or_spaces():
    assert split_amqp_urls("amqp://n1:5672/, amqp://n2:5672/\namqp://n3/") == [
        "amqp://n1:5672/", "amqp://n2:5672/", "amqp://n3/"]
    common = CommonConfig.from_env({"SIUI_AMQP_URL": "amqp://n1:5672/ amqp://n2:5672/"})
    assert common.amqp_url == "amqp://n1:5672/,amqp://n2:5672/"
    assert common.amqp_urls == ["amqp://n1:5672/", "amqp://n2:5672/"]


@pytest.mark.parametrize("value, message", [
    ("http://n1/", "amqp://"),
    ("amqp://n1:x/", "bad port"),
    ("amqp:///vhost", "no host"),
    ("amqp://n1/a,amqp://n2/b", "same virtual host"),
    ("amqp://u:p@n1/,amqp://v:p@n2/", "same virtual host and user"),
    (",".join(f"amqp://n{i}/" for i in range(17)), "at most 16"),
    ("amqp://" + "h" * 2100 + "/", "longer than"),
])
def test_bad_amqp_url_lists_are_refused(value, message):
    with pytest.raises(ConfigError, match=message):
        split_amqp_urls(value)


def test_a_bad_port_is_named_without_its_password():
    with pytest.raises(ConfigError) as caught:
        split_amqp_urls("amqp://u:secret@n1:x/")
    assert "secret" not in str(caught.value)


def test_each_node_gets_the_services_login(tmp_path: Path):
    secret = tmp_path / "secrets" / "amqp-certs"
    secret.parent.mkdir()
    secret.write_text("pw")
    secret.chmod(0o600)
    url = broker_url("amqp://n1:5672/,amqp://n2:5673/", tmp_path, "certs")
    assert url == "amqp://siui-certs:pw@n1:5672/,amqp://siui-certs:pw@n2:5673/"


def test_multi_host_database_urls():
    dsn = "postgresql://u:p@db1:5432,db2:5433,[fd00::1]:5434,db4/siui?target_session_attrs=read-write"
    assert database_hosts(dsn) == [("db1", 5432), ("db2", 5433), ("fd00::1", 5434), ("db4", 5432)]
    common = CommonConfig.from_env({"SIUI_DATABASE_URL": dsn,
                                    "SIUI_DATABASE_OWNER_URL": "postgresql://o:q@db4,db2:5433,db1,[fd00::1]:5434/siui"})
    assert common.database_url == dsn


def test_the_owner_url_must_name_the_same_hosts_and_database():
    with pytest.raises(ConfigError, match="must name the database"):
        CommonConfig.from_env({"SIUI_DATABASE_URL": "postgresql://u:p@db1,db2/siui",
                               "SIUI_DATABASE_OWNER_URL": "postgresql://o:q@db1/siui"})


@pytest.mark.parametrize("dsn, message", [
    ("postgresql://u:p@db1:x/siui", "bad port"),
    ("postgresql://u:p@db1,,db2/siui", "empty host"),
    ("postgresql://u:p@/siui?host=db1", "not as"),
    ("postgresql://u:p@" + ",".join(f"h{i}" for i in range(17)) + "/siui", "at most 16"),
])
def test_bad_database_host_lists_are_refused(dsn, message):
    with pytest.raises(ConfigError, match=message):
        database_hosts(dsn)


def test_several_hosts_land_on_the_primary_unless_told_otherwise():
    common = CommonConfig.from_env({"SIUI_DATABASE_URL": "postgresql://u:p@db1,db2/siui",
                                    "SIUI_DATABASE_OWNER_URL": "postgresql://o:q@db1,db2/siui?ssl=require"})
    assert common.database_url == "postgresql://u:p@db1,db2/siui?target_session_attrs=read-write"
    assert common.database_owner_url == "postgresql://o:q@db1,db2/siui?ssl=require&target_session_attrs=read-write"
    given = "postgresql://u:p@db1,db2/siui?target_session_attrs=primary"
    assert CommonConfig.from_env({"SIUI_DATABASE_URL": given}).database_url == given
    one = "postgresql://u:p@db1/siui"
    assert CommonConfig.from_env({"SIUI_DATABASE_URL": one}).database_url == one


def test_the_read_url_is_optional_and_prefers_a_standby():
    base = {"SIUI_DATABASE_URL": "postgresql://u:p@db1,db2/siui"}
    assert CommonConfig.from_env(base).database_read_url is None  # every read on the primary
    several = CommonConfig.from_env({**base, "SIUI_DATABASE_READ_URL": "postgresql://u:p@db2,db1/siui"})
    assert several.database_read_url == "postgresql://u:p@db2,db1/siui?target_session_attrs=prefer-standby"
    assert several.database_read_max_lag_seconds == 10.0
    one = CommonConfig.from_env({**base, "SIUI_DATABASE_READ_URL": "postgresql://u:p@db2/siui",
                                 "SIUI_DATABASE_READ_MAX_LAG_SECONDS": "2.5"})
    assert (one.database_read_url, one.database_read_max_lag_seconds) == ("postgresql://u:p@db2/siui", 2.5)
    told = "postgresql://u:p@db1,db2/siui?target_session_attrs=standby"
    assert CommonConfig.from_env({**base, "SIUI_DATABASE_READ_URL": told}).database_read_url == told


@pytest.mark.parametrize("env, message", [
    ({"SIUI_DATABASE_READ_URL": "mysql://db2/siui"}, "postgresql://"),
    ({"SIUI_DATABASE_READ_URL": "postgresql://u:p@db2/other"}, "database of SIUI_DATABASE_URL"),
    ({"SIUI_DATABASE_READ_URL": "postgresql://u:p@db2/siui?" + "x" * 3000}, "longer than"),
    ({"SIUI_DATABASE_READ_URL": "postgresql://u:p@db2:99999/siui"}, "bad port"),
    ({"SIUI_DATABASE_READ_MAX_LAG_SECONDS": "-1"}, "at least"),
    ({"SIUI_DATABASE_READ_MAX_LAG_SECONDS": "soon"}, "a number"),
])
def test_bad_read_settings_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        CommonConfig.from_env({"SIUI_DATABASE_URL": "postgresql://u:p@db1/siui", **env})


def test_a_dsn_is_split_without_urllib():
    """Debian's Python 3.11 (and 3.12+) urlsplit refuses a bracketed IPv6 host after
    another host; the DSN's parts are read without it, user and database included."""
    from shared.config import parse_dsn
    from shared.migrations import role_of

    dsn = "postgresql://siui%40b:p%2Fw@db1:5432,[fd00::1]:5434/siui?target_session_attrs=read-write"
    parts = parse_dsn(dsn)
    assert (parts.netloc, parts.database, parts.query) == (
        "siui%40b:p%2Fw@db1:5432,[fd00::1]:5434", "siui", "target_session_attrs=read-write")
    assert parts.user == "siui@b" and role_of(dsn) == "siui@b"
    assert parse_dsn("postgresql://db1/siui").user is None
