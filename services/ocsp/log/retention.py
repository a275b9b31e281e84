"""How long the OCSP log is kept, per group of houses. Pure: no database.

The log is kept no longer than it serves its purpose (GDPR art. 5(1)(e)): answering
"who used this certificate, when, from where" for a disputed refusal or a misused
certificate. 90 days covers the usual inquiry (a quarter); a house under an audit or
an inquiry may need longer, and one that settles disputes quickly may want shorter. So
there is a default (``SIUI_OCSP_LOG_RETENTION_DAYS``) and groups of houses with their
own (``SIUI_OCSP_LOG_RETENTION_BY_HOUSE="B,IF=180; CJ=30"``). Entries whose house is not
known (an unauthenticated OCSP request for an unregistered certificate) follow the
default.

The log is partitioned by UTC day, so the cheap way to forget is a DROP of a whole day:
a day is dropped once every group is done with it. A day that some groups still keep
and others do not is *trimmed*: rewritten with only the rows of the houses that still
keep it. ``keep_rule`` says what a day should hold; the keeper trims a day again only
when that rule changes (a day crossing one more group's limit).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from shared.houses import is_house

MIN_DAYS, MAX_DAYS = 1, 3660
MAX_SETTING_LENGTH = 2000


@dataclass(frozen=True)
class KeepRule:
    """What a day partition holds: the rows of ``houses``, and those of every other
    house (and of none) when ``others`` is set."""

    houses: tuple[str, ...]
    others: bool

    @property
    def signature(self) -> str:
        """A stable text for the rule, recorded with a trimmed day."""
        return ",".join(self.houses) + ("|others" if self.others else "")


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: int
    by_house: Mapping[str, int] = field(default_factory=dict)

    @property
    def longest(self) -> int:
        return max([self.default_days, *self.by_house.values()])

    @property
    def shortest(self) -> int:
        return min([self.default_days, *self.by_house.values()])

    @property
    def listed(self) -> tuple[str, ...]:
        """The houses with a retention of their own."""
        return tuple(sorted(self.by_house))

    def drop_before(self, today: date) -> date:
        """Day partitions before this date are dropped whole."""
        return today - timedelta(days=self.longest)

    def keep_rule(self, day: date, today: date) -> KeepRule | None:
        """What ``day`` should still hold on ``today``; None when it keeps everything
        (every house's retention covers it). A day kept by nobody is ``drop_before``'s."""
        age = (today - day).days

        def keeps(days: int) -> bool:
            return age <= days

        if all(keeps(days) for days in [self.default_days, *self.by_house.values()]):
            return None
        return KeepRule(tuple(h for h in self.listed if keeps(self.by_house[h])), keeps(self.default_days))

    def cutoffs(self, today: date) -> dict[str | None, date]:
        """Per listed house, and None for the rest: rows before that date are gone."""
        cut = {house: today - timedelta(days=days) for house, days in self.by_house.items()}
        cut[None] = today - timedelta(days=self.default_days)
        return cut

    def describe(self) -> dict[str, int]:
        """For the log at start and the README: days per house group."""
        groups: dict[int, list[str]] = {}
        for house, days in self.by_house.items():
            groups.setdefault(days, []).append(house)
        return {"default": self.default_days, **{",".join(sorted(hs)): d for d, hs in sorted(groups.items())}}


def parse_retention(default_days: int, text: str) -> RetentionPolicy:
    """``"B,IF=180; CJ=30"``: groups separated by ``;``, each houses (``CJ`` or ``CAS-CJ``,
    separated by commas or spaces) ``=`` days. Raises ValueError naming what is wrong."""
    if len(text) > MAX_SETTING_LENGTH:
        raise ValueError(f"is longer than {MAX_SETTING_LENGTH} characters")
    by_house: dict[str, int] = {}
    for group in filter(None, (g.strip() for g in text.split(";"))):
        houses_text, equals, days_text = group.partition("=")
        if not equals:
            raise ValueError(f"group {group!r} must be houses=days, e.g. B,IF=180")
        days_text = days_text.strip()
        if not days_text.isascii() or not days_text.isdigit() or not MIN_DAYS <= int(days_text) <= MAX_DAYS:
            raise ValueError(f"group {group!r}: days must be a whole number from {MIN_DAYS} to {MAX_DAYS}")
        houses = [h for h in houses_text.replace(",", " ").split() if h]
        if not houses:
            raise ValueError(f"group {group!r} names no house")
        for raw in houses:
            house = raw.upper().removeprefix("CAS-")
            if not is_house(house):
                raise ValueError(f"{raw!r} is not a house code (AB ... VN, B, OPSNAJ)")
            if house in by_house:
                raise ValueError(f"house {house} is in two groups")
            by_house[house] = int(days_text)
    return RetentionPolicy(default_days, by_house)
