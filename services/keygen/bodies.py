"""A JSON number too long for Python to read, kept so that its field is named.

Python's ``int()`` refuses a literal of more than 4,300 digits (CVE-2020-10735), so
``json.loads`` of ``{"print_order": 1000…0}`` fails as a whole and the body is answered
400 "not valid JSON", naming no field. keygen's fields are all bounded far below that
(``print_order`` 0..1,000,000), so such a number is simply out of range: :func:`loads`
reads the body again keeping it as an :class:`OverlongNumber`, and the field's own rule
answers 422 naming it. Only that one failure is read again; anything else unreadable
stays the 400 it was (see services/keygen/routes.py). Pure.
"""
from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["OverlongNumber", "loads"]


class OverlongNumber:
    """A JSON integer with more digits than ``int()`` reads; never a valid value."""

    __slots__ = ("digits", "negative")

    def __init__(self, literal: str) -> None:
        self.negative = literal.startswith("-")
        self.digits = len(literal) - self.negative

    def __repr__(self) -> str:
        return f"OverlongNumber({'-' if self.negative else ''}{self.digits} digits)"


def loads(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in ``raw`` with over-long integers kept as :class:`OverlongNumber`,
    or None when ``raw`` holds none (then it was unreadable for another reason, and stays
    so) or is not a JSON object even so. A body this returns always ends in a 422: no
    field of keygen accepts an :class:`OverlongNumber`."""
    limit = sys.get_int_max_str_digits() or 4300
    found: list[OverlongNumber] = []

    def read_int(literal: str) -> int | OverlongNumber:
        if len(literal) <= limit:
            return int(literal)
        found.append(OverlongNumber(literal))
        return found[-1]

    try:
        body = json.loads(raw, parse_int=read_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return body if found and isinstance(body, dict) else None
