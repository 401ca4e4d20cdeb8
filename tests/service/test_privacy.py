"""Pseudonymised user ids: keyed, deterministic, distinct per secret, and off without a secret."""

from __future__ import annotations

import hashlib
import hmac
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from liverec.core.errors import InvalidInputError
from liverec.service.privacy import Pseudonymizer

SECRET = "correct horse battery staple"
PSEUDONYM_RE = re.compile(r"p_[0-9a-f]{32}")


def test_pseudonym_is_the_truncated_hmac_of_the_raw_id() -> None:
    expected = "p_" + hmac.new(SECRET.encode(), b"ann@example.com", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymizer(SECRET).user_id("ann@example.com") == expected


def test_same_secret_gives_the_same_pseudonym_in_every_instance() -> None:
    first, second = Pseudonymizer(SECRET), Pseudonymizer(SECRET.encode())
    for raw in ["ann@example.com", "u1", "用户42", "x" * 256]:
        assert first.user_id(raw) == first.user_id(raw) == second.user_id(raw)


def test_different_secrets_give_different_pseudonyms() -> None:
    assert Pseudonymizer(SECRET).user_id("u1") != Pseudonymizer(SECRET + "!").user_id("u1")


def test_different_users_get_different_pseudonyms() -> None:
    p = Pseudonymizer(SECRET)
    pseudonyms = {p.user_id(f"user-{i}") for i in range(1000)}
    assert len(pseudonyms) == 1000


@given(st.text(min_size=1, max_size=256).filter(str.strip))
def test_any_user_id_maps_to_a_fixed_shape(raw: str) -> None:
    p = Pseudonymizer(SECRET)
    pseudonym = p.user_id(raw)
    assert PSEUDONYM_RE.fullmatch(pseudonym)
    assert p.user_id(raw) == pseudonym


@pytest.mark.parametrize("secret", ["", "too short", b"x" * 15, "é" * 7])
def test_a_secret_shorter_than_16_bytes_is_refused(secret: str | bytes) -> None:
    with pytest.raises(InvalidInputError, match="at least 16") as info:
        Pseudonymizer(secret)
    assert info.value.field == "user_id_secret"
    assert info.value.value is None  # a secret is never echoed, however bad
    if secret:
        assert str(secret) not in str(info.value)


@pytest.mark.parametrize("secret", ["x" * 16, b"x" * 16, "é" * 8])
def test_a_secret_of_16_bytes_is_enough(secret: str | bytes) -> None:
    assert Pseudonymizer(secret).enabled


def test_without_a_secret_ids_pass_through_unchanged() -> None:
    p = Pseudonymizer(None)
    assert not p.enabled
    assert p.user_id("ann@example.com") == "ann@example.com"


def test_enabled_with_a_secret() -> None:
    assert Pseudonymizer(SECRET).enabled


def test_repr_never_shows_the_secret() -> None:
    assert SECRET not in repr(Pseudonymizer(SECRET))
    assert repr(Pseudonymizer(SECRET)) == "Pseudonymizer(enabled=True)"


def test_concurrent_calls_agree_with_sequential_ones() -> None:
    p = Pseudonymizer(SECRET)
    raws = [f"user-{i}" for i in range(2000)]
    expected = [p.user_id(raw) for raw in raws]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(p.user_id, raws)) == expected
