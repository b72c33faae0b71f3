"""scrypt password hashes: verify, refuse, say when to rehash; nothing malformed passes."""

from __future__ import annotations

import pytest

from federica.aaa import passwords
from federica.errors import InvalidInput


def test_a_password_verifies_and_no_other_does() -> None:
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("scrypt$15$8$1$") and "correct" not in stored
    assert passwords.verify_password("correct horse battery", stored)
    assert not passwords.verify_password("correct horse batterx", stored)
    assert not passwords.verify_password("", stored)
    assert passwords.hash_password("correct horse battery") != stored  # salted


@pytest.mark.parametrize(
    "stored", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$15$8$1$!!$!!", "scrypt$x$8$1$aa$bb"]
)
def test_malformed_stored_values_never_verify(stored: str) -> None:
    assert not passwords.verify_password("anything at all", stored)


def test_weaker_parameters_ask_for_a_rehash() -> None:
    assert passwords.needs_rehash(passwords.hash_password("abcdefghijk", log2_n=14))
    assert not passwords.needs_rehash(passwords.hash_password("abcdefghijk"))


def test_strength_limits_name_the_field() -> None:
    with pytest.raises(InvalidInput) as short:
        passwords.check_strength("short")
    assert short.value.errors[0].field == "password"
    with pytest.raises(InvalidInput):
        passwords.check_strength("x" * 2000)
    assert not passwords.verify_password("x" * 2000, passwords.DUMMY_HASH)
