"""What every input must be before any service looks at it, written once.

Each service checks its own fields (a CUI, a house code, a serial); these rules come
first and hold everywhere, because what breaks them breaks the platform rather than a
business rule: a NUL or a lone surrogate cannot be stored by PostgreSQL (the request
would end in a 500), JSON nested a thousand deep exhausts the parser's recursion, an
integer of 5,000 digits or beyond 64 bits cannot be a row id or a page, and a date in
year 9999 overflows the first arithmetic done on it. Pure functions, no HTTP.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

__all__ = ["MAX_INT", "MAX_JSON_DEPTH", "MIN_MOMENT", "MAX_MOMENT", "check_moment", "json_depth", "json_problems",
           "parse_json_int", "text_problem"]

#: The largest integer any API accepts: PostgreSQL's bigint, what ids and offsets are.
MAX_INT = 2 ** 63 - 1
#: JSON bodies here are flat records, at most an object in an object; 32 is generous.
MAX_JSON_DEPTH = 32
#: Moments any API accepts (filters, validity dates): far beyond any real record, well
#: inside what date arithmetic and PostgreSQL handle.
MIN_MOMENT = datetime(1900, 1, 1, tzinfo=timezone.utc)
MAX_MOMENT = datetime(2199, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be taken as text at all, or None: NUL and other C0 controls
    (tab and line breaks aside), DEL, and lone surrogates (not encodable as UTF-8)."""
    if text.isascii():
        if text.isprintable():
            return None
        for ch in text:
            if (ch < " " and ch not in _ALLOWED_CONTROLS) or ch == "\x7f":
                return "must not contain NUL or other control characters"
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    for ch in text:
        if (ch < " " and ch not in _ALLOWED_CONTROLS) or ch == "\x7f":
            return "must not contain NUL or other control characters"
    return None


def json_depth(raw: bytes | str, limit: int = MAX_JSON_DEPTH) -> int | None:
    """The nesting depth of a JSON text, reading it once without parsing (strings skipped),
    or None as soon as it exceeds ``limit``: the parser is then never asked to recurse."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return None
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def parse_json_int(text: str) -> int:
    """``json.loads``' integer hook: a whole number within ±``MAX_INT`` (ValueError
    beyond, before Python is asked to convert thousands of digits)."""
    digits = text[1:] if text.startswith("-") else text
    if len(digits) > 19:
        raise ValueError(f"the number {text[:12]}... is too large")
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"the number {text} is too large")
    return value


def json_problems(value: Any, path: str = "") -> dict[str, str]:
    """What is wrong with a parsed JSON value's strings (keys included), as
    ``{field path: message}``; an empty dict when all is well."""
    problems: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                problems.setdefault(where or "(body)", problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else key
                if text_problem(key):
                    # Shown escaped (it could not be shown otherwise); no such field exists.
                    problems.setdefault(key.encode("unicode_escape").decode("ascii")[:60], "unknown field")
                    continue
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return problems


def check_moment(moment: datetime | date) -> str | None:
    """Why a date or moment is outside what the APIs accept (years 1900-2199), or None."""
    # By its own year: converting year 9999 with a negative offset to UTC would overflow.
    inside = MIN_MOMENT.year <= moment.year <= MAX_MOMENT.year
    return None if inside else "must be between the years 1900 and 2199"
