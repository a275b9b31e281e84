"""Fresh identifiers for tests that share a database (or a running stack): provider codes
(CUI) and personal numbers (CNP) with valid check digits, never one twice in a process
and never the demo provider's, which the seed-flow tests register."""
from __future__ import annotations

import random

from stdnum.ro import cnp as stdnum_cnp
from stdnum.ro import cui as stdnum_cui

DEMO_CUI = "12433636"  # deploy/devpki.py's demo provider
_given: set[str] = set()


def new_cui() -> str:
    """A 9-digit CUI (8 digits and the check digit) not handed out before in this process."""
    while True:
        body = str(random.randrange(10_000_000, 100_000_000))
        cui = body + stdnum_cui.calc_check_digit(body)
        if cui not in _given:
            _given.add(cui)
            return cui


def new_cnp() -> str:
    """A man's CNP born in 1950-1998 on the first of January, with a valid check digit."""
    body = f"1{random.randrange(50, 99):02d}0101{random.randrange(1, 40):02d}{random.randrange(100, 999)}"
    return body + stdnum_cnp.calc_check_digit(body)


def bad_check_digit(number: str) -> str:
    """``number`` with its check digit changed: well formed, wrong."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)
