"""The paged, searchable lists of the seed's screens ("Numarul total: 2647 (133 pagini)",
"Linii/pag."), read the same way by every service that lists records."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from shared import errors
from shared.houses import is_house

PER_PAGE_CHOICES = (10, 20, 50, 100)
DEFAULT_PER_PAGE = 20  # "Linii/pag." 20 on the seed's screen
Q_MAX = 100


@dataclass(frozen=True)
class PageQuery:
    q: str | None
    page: int
    per_page: int
    cas: str | None  # what the caller asked for; shared.auth.house_filter decides

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def parse_page_query(params: Mapping[str, str], problems: dict[str, str]) -> PageQuery:
    """``q``, ``page``, ``per_page`` and ``cas`` of a list request; what is wrong with them
    is added to ``problems`` (the caller may add its own, then calls ``raise_problems``)."""
    q = (params.get("q") or "").strip()
    if len(q) > Q_MAX:
        problems["q"] = f"must be at most {Q_MAX} characters"
    elif any(ord(c) < 32 for c in q):
        problems["q"] = "must not contain control characters"
    page = _positive(params.get("page"), 1, "page", problems)
    per_page = _positive(params.get("per_page"), DEFAULT_PER_PAGE, "per_page", problems)
    if "per_page" not in problems and per_page not in PER_PAGE_CHOICES:
        problems["per_page"] = "must be one of " + ", ".join(map(str, PER_PAGE_CHOICES))
    cas = (params.get("cas") or "").strip().upper() or None
    if cas is not None and not is_house(cas, include_national=True):
        problems["cas"] = "is not a house code"
    return PageQuery(q or None, page, per_page, cas)


def raise_problems(problems: dict[str, str]) -> None:
    if problems:
        raise errors.Invalid("some query parameters are not acceptable", errors=problems)


def page_count(total: int, per_page: int) -> int:
    """Pages needed for ``total`` rows: 2647 at 20 a page is 133 ("133 pagini")."""
    return math.ceil(total / per_page)


def _positive(raw: str | None, default: int, name: str, problems: dict[str, str]) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        problems[name] = "must be a whole number"
        return default
    if value < 1 or value > 1_000_000:
        problems[name] = "must be between 1 and 1000000"
    return value
