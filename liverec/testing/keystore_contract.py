"""The contract every :class:`~liverec.storage.base.KeyStore` keeps, as one reusable test suite.

Subclass :class:`KeyStoreContract` in a test module and override the ``make_keys`` fixture to
return a function that opens a new, empty key store of the implementation under test::

    class TestSqliteKeyStore(KeyStoreContract):
        @pytest.fixture
        def make_keys(self, tmp_path):
            return lambda: SqliteKeyStore(tmp_path / "liverec.db.keys.db")

Tokens have the form ``lr_<key_id>_<secret>``; the tests check what a store issues, what it
accepts (exactly its own live tokens, whatever else it is given, at the cost of one constant-time
comparison each) and how it refuses bad names and scopes.
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.storage.base import KeyStore

KeyStoreFactory = Callable[[], KeyStore]

# The property tests run every example against the one store the fixture opened, and each
# subclass (each implementation) runs them from its own instance: both are intended.
_ONE_STORE_PER_SUBCLASS = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]

TOKEN_RE = re.compile(r"lr_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")

MALFORMED_TOKENS = [
    "",
    "lr_",
    "lr__",
    "lr_0123abcd_",
    "lr_0123ABCD_secret",
    "xx_0123abcd_secret",
    "Bearer lr_0123abcd_secret",
    "lr_0123abc_secret",
    "\x00" * 55,
    "lr_0123abcd_" + "é" * 43,
    "lr_0123abcd_\ud800",  # a lone surrogate cannot be encoded as UTF-8
    "lr_0123abcd_" + "a" * 10_000_000,
]


class KeyStoreContract:
    """Tests every key store must pass; subclasses override :meth:`make_keys`."""

    @pytest.fixture
    def make_keys(self) -> KeyStoreFactory:
        """Return a function that opens a new, empty key store of the implementation under test."""
        raise NotImplementedError("override the make_keys fixture in the subclass")

    @pytest.fixture
    def keys(self, make_keys: KeyStoreFactory) -> Iterator[KeyStore]:
        store = make_keys()
        yield store
        store.close()

    def test_is_a_key_store_that_starts_empty(self, keys: KeyStore) -> None:
        assert isinstance(keys, KeyStore)
        assert len(keys) == 0
        assert keys.list() == []

    # --- creating and verifying ----------------------------------------------------------------

    def test_create_returns_a_well_formed_token_and_its_key(self, keys: KeyStore) -> None:
        token, key = keys.create("ingest bot", ["ingest", "read"])
        match = TOKEN_RE.fullmatch(token)
        assert match is not None
        assert key.key_id == match.group(1)
        assert key.name == "ingest bot"
        assert key.scopes == frozenset({"ingest", "read"})
        assert abs(key.created - time.time()) < 60
        assert len(keys) == 1
        assert keys.list() == [key]

    def test_every_token_is_new(self, keys: KeyStore) -> None:
        issued = [keys.create(f"k{i}", ["read"]) for i in range(20)]
        assert len({token for token, _ in issued}) == 20
        assert len({key.key_id for _, key in issued}) == 20
        assert len(keys) == 20

    def test_verify_accepts_the_token_it_issued(self, keys: KeyStore) -> None:
        token, key = keys.create("a", ["read"])
        other_token, other = keys.create("b", ["admin"])
        assert keys.verify(token) == key
        assert keys.verify(other_token) == other

    def test_list_is_oldest_first(self, keys: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = iter([300.0, 100.0, 200.0])
        monkeypatch.setattr(time, "time", lambda: next(clock))
        for name in ("made at 300", "made at 100", "made at 200"):
            keys.create(name, ["read"])
        monkeypatch.undo()
        assert [(k.name, k.created) for k in keys.list()] == [
            ("made at 100", 100.0), ("made at 200", 200.0), ("made at 300", 300.0),
        ]

    def test_verify_rejects_a_wrong_secret_with_a_real_key_id(self, keys: KeyStore) -> None:
        token, key = keys.create("a", ["read"])
        last = token[-1]
        tampered = token[:-1] + ("A" if last != "A" else "B")
        assert keys.verify(tampered) is None
        assert keys.verify(f"lr_{key.key_id}_{'x' * 43}") is None
        assert keys.verify(token + "x") is None
        assert keys.verify(token[:-1]) is None

    def test_verify_rejects_a_revoked_key_and_revoke_returns_it(self, keys: KeyStore) -> None:
        token, key = keys.create("a", ["read"])
        kept_token, kept = keys.create("b", ["read"])
        assert keys.revoke(key.key_id) == key
        assert keys.verify(token) is None
        assert keys.verify(kept_token) == kept
        assert keys.list() == [kept]
        assert len(keys) == 1

    def test_revoking_an_unknown_key_is_not_found(self, keys: KeyStore) -> None:
        keys.create("a", ["read"])
        with pytest.raises(NotFoundError, match="deadbeef") as info:
            keys.revoke("deadbeef")
        assert info.value.kind == "api_key"
        assert info.value.key == "deadbeef"
        assert len(keys) == 1

    def test_revoking_twice_is_not_found_the_second_time(self, keys: KeyStore) -> None:
        _, key = keys.create("a", ["read"])
        keys.revoke(key.key_id)
        with pytest.raises(NotFoundError):
            keys.revoke(key.key_id)

    @pytest.mark.parametrize("token", MALFORMED_TOKENS, ids=range(len(MALFORMED_TOKENS)))
    def test_verify_returns_none_for_malformed_tokens(self, keys: KeyStore, token: str) -> None:
        keys.create("a", ["read"])
        assert keys.verify(token) is None

    @settings(suppress_health_check=_ONE_STORE_PER_SUBCLASS)
    @given(token=st.text())
    def test_verify_never_raises_on_any_text(self, keys: KeyStore, token: str) -> None:
        if not len(keys):
            keys.create("a", ["read"])
        assert keys.verify(token) is None

    @settings(suppress_health_check=_ONE_STORE_PER_SUBCLASS)
    @given(suffix=st.text(alphabet=st.characters(), max_size=80))
    def test_verify_never_raises_on_text_after_a_real_key_id(self, keys: KeyStore, suffix: str) -> None:
        if not len(keys):
            keys.create("a", ["read"])
        key_id = keys.list()[0].key_id
        assert keys.verify(f"lr_{key_id}_{suffix}") is None

    def test_verify_tolerates_non_strings(self, keys: KeyStore) -> None:
        keys.create("a", ["read"])
        assert keys.verify(None) is None  # type: ignore[arg-type]
        assert keys.verify(b"lr_0123abcd_x") is None  # type: ignore[arg-type]
        assert keys.verify(12345) is None  # type: ignore[arg-type]

    @pytest.mark.parametrize("kind", ["issued", "wrong secret", "unknown key id", "malformed"])
    def test_every_verify_makes_exactly_one_constant_time_comparison(
        self, keys: KeyStore, monkeypatch: pytest.MonkeyPatch, kind: str
    ) -> None:
        token, key = keys.create("a", ["read"])
        candidate = {
            "issued": token,
            "wrong secret": f"lr_{key.key_id}_{'x' * 43}",
            "unknown key id": f"lr_{'0' * 8 if key.key_id != '0' * 8 else '1' * 8}_{'x' * 43}",
            "malformed": "garbage",
        }[kind]
        calls: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def counting(a: bytes, b: bytes) -> bool:
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", counting)
        keys.verify(candidate)
        assert len(calls) == 1
        assert all(len(a) == len(b) == 32 for a, b in calls)

    # --- validation ----------------------------------------------------------------------------

    def test_scopes_must_be_known(self, keys: KeyStore) -> None:
        with pytest.raises(InvalidInputError, match="'reed'") as info:
            keys.create("a", ["read", "reed"])
        assert info.value.field == "scopes"
        assert info.value.value == "reed"
        assert len(keys) == 0

    def test_scopes_must_not_be_empty(self, keys: KeyStore) -> None:
        with pytest.raises(InvalidInputError, match="at least one scope") as info:
            keys.create("a", [])
        assert info.value.field == "scopes"
        assert len(keys) == 0

    def test_a_lone_string_is_one_scope(self, keys: KeyStore) -> None:
        _, key = keys.create("a", "ingest")
        assert key.scopes == frozenset({"ingest"})
        assert keys.list()[0].scopes == frozenset({"ingest"})

    @pytest.mark.parametrize("name", ["", "   ", "x" * 101])
    def test_name_must_be_non_empty_and_at_most_100_characters(self, keys: KeyStore, name: str) -> None:
        with pytest.raises(InvalidInputError) as info:
            keys.create(name, ["read"])
        assert info.value.field == "name"
        assert len(keys) == 0

    def test_a_name_of_exactly_100_characters_is_fine(self, keys: KeyStore) -> None:
        _, key = keys.create("x" * 100, ["read"])
        assert key.name == "x" * 100
        assert keys.list() == [key]

    def test_a_key_comes_back_equal_in_every_field(self, keys: KeyStore) -> None:
        token, key = keys.create("名前 with ünïcode", ["admin", "read", "ingest"])
        [listed] = keys.list()
        assert listed == key
        assert (listed.name, listed.scopes) == ("名前 with ünïcode", frozenset({"admin", "read", "ingest"}))
        assert keys.verify(token) == listed

    # --- threads and lifetime ------------------------------------------------------------------

    def test_concurrent_creates_lose_nothing(self, keys: KeyStore) -> None:
        tokens: list[str] = []
        lock = threading.Lock()

        def work(n: int) -> None:
            for i in range(10):
                token, _ = keys.create(f"t{n}-{i}", ["read"])
                with lock:
                    tokens.append(token)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(keys) == 60
        assert all(keys.verify(token) is not None for token in tokens)

    def test_closing_twice_is_harmless(self, make_keys: KeyStoreFactory) -> None:
        keys = make_keys()
        token, _ = keys.create("a", ["read"])
        keys.close()
        keys.close()
        keys.verify(token)  # never raises, closed or not
