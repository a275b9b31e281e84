"""How long the OCSP log is kept per house group: the setting, and what each day holds."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.ocsp.config import Config
from services.ocsp.log.retention import KeepRule, RetentionPolicy, parse_retention
from shared.config import ConfigError

TODAY = date(2026, 12, 2)


def test_groups_parse_with_or_without_the_prefix():
    policy = parse_retention(90, " B, cas-if = 180 ;CJ=30; ")
    assert policy.by_house == {"B": 180, "IF": 180, "CJ": 30}
    assert (policy.longest, policy.shortest, policy.listed) == (180, 30, ("B", "CJ", "IF"))
    assert policy.describe() == {"default": 90, "CJ": 30, "B,IF": 180}
    assert parse_retention(90, "") == RetentionPolicy(90)


@pytest.mark.parametrize(("text", "complaint"), [
    ("B", "houses=days"), ("B=0", "days must be"), ("B=3661", "days must be"), ("B=1e3", "days must be"),
    ("=30", "names no house"), ("XX=30", "not a house code"), ("CNAS=30", "not a house code"),
    ("B=30;B=40", "in two groups"), ("B=٣٠", "days must be"), ("B=1;" * 600, "longer than"),
])
def test_bad_settings_are_named(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_retention(90, text)


def test_a_bad_setting_stops_the_service_at_start(monkeypatch):
    with pytest.raises(ConfigError, match="SIUI_OCSP_LOG_RETENTION_BY_HOUSE"):
        Config.from_env({"SIUI_OCSP_LOG_RETENTION_BY_HOUSE": "B=30;XX=2"})


def test_what_each_day_keeps():
    policy = parse_retention(90, "B,IF=180; CJ=30")
    ago = lambda n: TODAY - timedelta(days=n)  # noqa: E731
    assert policy.keep_rule(ago(0), TODAY) is None
    assert policy.keep_rule(ago(30), TODAY) is None                      # CJ's last day
    assert policy.keep_rule(ago(31), TODAY) == KeepRule(("B", "IF"), True)  # CJ's rows go
    assert policy.keep_rule(ago(90), TODAY) == KeepRule(("B", "IF"), True)
    assert policy.keep_rule(ago(91), TODAY) == KeepRule(("B", "IF"), False)  # the default's go
    assert policy.drop_before(TODAY) == ago(180)
    assert policy.keep_rule(ago(31), TODAY).signature == "B,IF|others"
    assert policy.cutoffs(TODAY) == {"B": ago(180), "IF": ago(180), "CJ": ago(30), None: ago(90)}


def test_a_longer_default_than_every_group():
    policy = parse_retention(365, "CJ=30")
    assert policy.drop_before(TODAY) == TODAY - timedelta(days=365)
    assert policy.keep_rule(TODAY - timedelta(days=31), TODAY) == KeepRule((), True)


def test_without_groups_days_are_only_dropped():
    policy = RetentionPolicy(90)
    assert all(policy.keep_rule(TODAY - timedelta(days=n), TODAY) is None for n in range(91))
