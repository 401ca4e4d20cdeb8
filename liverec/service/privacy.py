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

from liverec.core.errors import InvalidInputError

__all__ = ["MIN_SECRET_BYTES", "Pseudonymizer"]

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
        key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
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
        """The id to store for the caller's ``raw`` user id."""
        if self._mac is None:
            return raw
        mac = self._mac.copy()
        mac.update(raw.encode("utf-8", "surrogatepass"))
        return _PREFIX + mac.hexdigest()[:_HEX_CHARS]

    def __repr__(self) -> str:  # never show the secret
        return f"Pseudonymizer(enabled={self.enabled})"
