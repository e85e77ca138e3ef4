"""Fernet encryption of stored API keys.

ENCRYPTION_KEY holds one key or several separated by commas: the first encrypts,
all decrypt, which is how a key is rotated without downtime. Errors are one line
naming ENCRYPTION_KEY; the cryptography exception chain is dropped because it adds
nothing an operator can act on and must never carry a key or a token.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

import settings
from db.errors import VaultError

ENV = "ENCRYPTION_KEY"


class Vault:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: list[str]) -> None:
        cleaned = [k.strip() for k in keys if k and k.strip()]
        if not cleaned:
            raise VaultError(f"{ENV} is not set: give a Fernet key (Fernet.generate_key())")
        fernets: list[Fernet] = []
        for i, key in enumerate(cleaned, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                raise VaultError(
                    f"{ENV}: key #{i} of {len(cleaned)} is not a valid Fernet key "
                    "(expected 32 url-safe base64-encoded bytes)"
                ) from None
        self._primary = fernets[0]
        self._multi = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_env(cls) -> Vault:
        """The vault for ENCRYPTION_KEY, or VaultError when missing or malformed."""
        return cls((settings.current().encryption_key or "").split(","))

    def __repr__(self) -> str:
        return f"Vault(keys=<{self.key_count} hidden>)"

    def encrypt(self, plaintext: str) -> str:
        if not isinstance(plaintext, str) or not plaintext:
            raise VaultError("refusing to encrypt an empty API key")
        return self._multi.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._multi.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, AttributeError, TypeError):
            raise VaultError(
                f"cannot decrypt a stored API key with any key in {ENV} "
                "(wrong key, or the key that encrypted it was removed)"
            ) from None

    def is_current(self, token: str) -> bool:
        """True when `token` is already encrypted with the first key."""
        try:
            self._primary.decrypt(token.encode("ascii"))
            return True
        except (InvalidToken, UnicodeError):
            return False

    def rotate_token(self, token: str) -> str:
        """Re-encrypt `token` with the first key (it may be under any listed key)."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, AttributeError, TypeError):
            raise VaultError(
                f"cannot re-encrypt a stored API key: no key in {ENV} decrypts it "
                "(add the old key after the new one, comma-separated)"
            ) from None
