"""users: the password policy, generated passwords and argon2id hashes."""
from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from services.users.passwords import (check, check_password, generate_password, hash_password,
                                      make_hasher, password_problems)
from shared import errors

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.mark.parametrize("password, problem", [
    ("short-1Aa", "at least 12"),
    ("x" * 129, "at most 128"),
    ("abababababab", "different characters"),
    ("Password1234", "well-known"),
    ("ion.popescu-2026!", "user name"),
    ("Cod-E12345-salariat", "employee code"),
])
def test_policy_refuses_with_a_reason(password, problem):
    found = password_problems(password, username="ion.popescu", employee_code="E12345")
    assert found is not None and problem.split()[-1] in found


def test_policy_accepts_a_long_unrelated_password():
    assert password_problems("vara-la-munte-2026", username="ion.popescu", employee_code="E1") is None


def test_check_password_names_the_field():
    with pytest.raises(errors.Invalid) as refused:
        check_password("scurta")
    assert set(refused.value.errors) == {"password"}


def test_generated_passwords_pass_the_policy_and_differ():
    passwords = {generate_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) == 23 and password.count("-") == 3
        assert password_problems(password, username="admin") is None
        assert not set(password) & set("0O1lI")


def test_production_hasher_is_argon2id():
    assert make_hasher().type is Type.ID


async def test_hash_and_check():
    stored = await hash_password(FAST, "vara-la-munte-2026")
    assert stored.startswith("$argon2id$")
    assert check(FAST, stored, "vara-la-munte-2026") == (True, None)
    assert check(FAST, stored, "vara-la-munte-2027") == (False, None)
    assert check(FAST, "not a hash", "vara-la-munte-2026") == (False, None)


def test_a_weaker_hash_is_replaced_when_its_password_proves_right():
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    weak = FAST.hash("vara-la-munte-2026")
    matches, rehashed = check(stronger, weak, "vara-la-munte-2026")
    assert matches and rehashed is not None and not stronger.check_needs_rehash(rehashed)
    assert stronger.verify(rehashed, "vara-la-munte-2026")
    assert check(stronger, weak, "vara-la-munte-2027") == (False, None)  # never for a wrong one
