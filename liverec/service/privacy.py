"""User ids pseudonymised at rest.

Callers often use an email address or an account number as the user id. With a secret set,
the service stores ``p_`` + HMAC-SHA256(secret, user_id) instead, so a copied database does not
name anybody. A keyed HMAC, not a plain hash: the space of emails and account numbers is small
enough to enumerate, so ``sha256("ann@example.com")`` is reversed by hashing candidates, while
without the secret the HMAC cannot even be checked against a guess.

The mapping is deterministic: the same secret gives the same pseudonym in every process and
after every restart, so later events join the same history and erasing a user by raw id finds
the rows. Changing the secret therefore orphans all stored history.

>>> p = Pseudonymizer("a secret of at least 16 bytes")
>>> p.user_id("ann@example.com") == p.user_id("ann@example.com"), p.user_id("ann@example.com")[:2]
(True, 'p_')
>>> Pseudonymizer(None).user_id("ann@example.com")
'ann@example.com'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager

from liverec.core.errors import InvalidInputError, LiveRecError
from liverec.core.params import check_id

__all__ = ["MIN_SECRET_BYTES", "Pseudonymizer", "naming_raw"]

#: The shortest secret accepted; a shorter one could be guessed along with the user ids.
MIN_SECRET_BYTES = 16
_PREFIX = "p_"
_HEX_CHARS = 32  # 128 bits: collisions are out of reach for any number of users


class Pseudonymizer:
    """Maps raw user ids to stable pseudonyms under ``secret``; ``None`` leaves ids unchanged.

    Raises :class:`InvalidInputError` (field ``user_id_secret``) for a secret shorter than
    16 bytes. Apply it once, at the edge: a pseudonym fed back in is hashed again.
    """

    def __init__(self, secret: str | bytes | None) -> None:
        if secret is None:
            self._mac: hmac.HMAC | None = None
            return
        if not isinstance(secret, str | bytes):
            # bytes(64) would be 64 zero bytes, a key anyone can guess (issue 12); the value is
            # left out of the message, as below.
            raise InvalidInputError(
                f"user_id_secret must be a string of at least {MIN_SECRET_BYTES} bytes, not {type(secret).__name__}",
                field="user_id_secret",
            )
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        if len(key) < MIN_SECRET_BYTES:
            # The value is left out of the error on purpose: it is a secret, however bad.
            raise InvalidInputError(
                f"user id secret is {len(key)} bytes long; at least {MIN_SECRET_BYTES} are needed",
                field="user_id_secret",
            )
        # Keyed once here; each call copies the prepared state instead of re-deriving the pads.
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    @property
    def enabled(self) -> bool:
        """Whether ids are pseudonymised (a secret was given)."""
        return self._mac is not None

    def user_id(self, raw: str) -> str:
        """The id to store for the caller's ``raw`` user id.

        Raises :class:`InvalidInputError` (field ``user_id``) for a raw id no event could hold
        (blank, or longer than 256 characters): checked before hashing, since the pseudonym
        always fits, and an id stored that way could never be erased.
        """
        check_id(raw, "user_id")
        if self._mac is None:
            return raw
        mac = self._mac.copy()
        mac.update(raw.encode("utf-8", "surrogatepass"))
        return _PREFIX + mac.hexdigest()[:_HEX_CHARS]

    def __repr__(self) -> str:  # never show the secret
        return f"Pseudonymizer(enabled={self.enabled})"


@contextmanager
def naming_raw(raw: str, stored: str) -> Iterator[None]:
    """Make a liverec error raised inside name the caller's ``raw`` user id where it named
    ``stored``, its pseudonym: answering any made-up id with its pseudonym would let a caller
    compute the keyed hash without the secret (issue 12), and the raw id is what they sent."""
    try:
        yield
    except LiveRecError as exc:
        if stored != raw:
            message = str(exc).replace(repr(stored), repr(raw)).replace(stored, raw)
            exc.args = (message, *exc.args[1:])
            for name in ("key", "value"):
                if getattr(exc, name, None) == stored:
                    setattr(exc, name, raw)
        raise
