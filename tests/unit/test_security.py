"""Password hashing: production uses argon2-cffi's defaults; tests use cheap parameters."""

from __future__ import annotations

import argon2
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY
from flask import Flask

from clinic_app import security


def _app(*, testing: bool) -> Flask:
    app = Flask(__name__)
    app.config["TESTING"] = testing
    return app


def _parameters(hasher: PasswordHasher) -> argon2.Parameters:
    return argon2.Parameters(
        type=hasher.type, version=argon2.low_level.ARGON2_VERSION, salt_len=hasher.salt_len,
        hash_len=hasher.hash_len, time_cost=hasher.time_cost, memory_cost=hasher.memory_cost,
        parallelism=hasher.parallelism,
    )


def test_production_hashes_use_argon2_cffi_defaults_the_rfc_9106_low_memory_profile():
    assert _parameters(security.PRODUCTION_HASHER) == _parameters(PasswordHasher())
    assert _parameters(security.PRODUCTION_HASHER) == RFC_9106_LOW_MEMORY
    with _app(testing=False).app_context():
        made = security.hash_password("correct-horse-battery")
    assert argon2.extract_parameters(made) == RFC_9106_LOW_MEMORY
    # Outside any app (CLI scripts, import time) the production parameters apply too.
    assert argon2.extract_parameters(security.hash_password("x" * 12)) == RFC_9106_LOW_MEMORY


def test_testing_hashes_are_cheap_and_only_under_testing():
    with _app(testing=True).app_context():
        made = security.hash_password("correct-horse-battery")
    found = argon2.extract_parameters(made)
    assert (found.time_cost, found.memory_cost, found.parallelism) == (1, 8, 1)
    assert found.type == argon2.Type.ID


def test_cheap_hashes_verify_everywhere_and_production_asks_to_rehash_them():
    with _app(testing=True).app_context():
        cheap = security.hash_password("correct-horse-battery")
        assert security.verify_password(cheap, "correct-horse-battery")
        assert not security.verify_password(cheap, "wrong-horse-battery")
        assert not security.needs_rehash(cheap)
    with _app(testing=False).app_context():
        assert security.verify_password(cheap, "correct-horse-battery")
        assert not security.verify_password(cheap, "wrong-horse-battery")
        assert security.needs_rehash(cheap)


def test_no_hash_fails_under_either_hasher():
    for testing in (True, False):
        with _app(testing=testing).app_context():
            assert not security.verify_password(None, "correct-horse-battery")
            assert not security.verify_password("not-a-hash", "correct-horse-battery")


def test_password_hasher_is_the_hasher_in_use_with_its_parameters():
    # bench/timing.py prints these parameters; a function returned here instead broke it.
    hasher = security.password_hasher()
    assert isinstance(hasher, PasswordHasher)
    assert (hasher.time_cost, hasher.memory_cost) == (RFC_9106_LOW_MEMORY.time_cost,
                                                      RFC_9106_LOW_MEMORY.memory_cost)
