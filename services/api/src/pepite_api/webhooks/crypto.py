"""Webhook secrets: made, sealed at rest, and used to sign deliveries.

A secret signs every delivery, so the worker needs it in clear and it cannot be
stored as a digest the way API keys are. It is stored encrypted with Fernet
(AES-128-CBC with an HMAC-SHA256 tag) under a key derived from
``PEPITE_SECRETS_KEY``: a copy of the database alone reveals no secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken

from pepite_api.settings import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - the visible prefix of every secret, not one
SECRETS_KEY_SETTING = "PEPITE_SECRETS_KEY"


class SecretUnreadableError(Exception):
    """A sealed secret that this ``PEPITE_SECRETS_KEY`` cannot open."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretBox:
    """Seals and opens webhook secrets with a key derived from ``PEPITE_SECRETS_KEY``."""

    def __init__(self, secrets_key: str) -> None:
        # Fernet wants 32 url-safe base64 bytes; SHA-256 turns any long string into that.
        digest = hashlib.sha256(secrets_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox | None:
        """The box for ``settings``, or None when ``PEPITE_SECRETS_KEY`` is not set."""
        if settings.secrets_key is None:
            return None
        return cls(settings.secrets_key.get_secret_value())

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        """The secret in clear.

        Raises:
            SecretUnreadableError: sealed under another key (``PEPITE_SECRETS_KEY``
                changed), or altered.
        """
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadableError(
                f"the subscription's secret cannot be decrypted with this {SECRETS_KEY_SETTING}"
                " (was it changed?); rotate the secret"
            ) from None


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with the secret's UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets_in_use: Sequence[str], timestamp: int, body: bytes) -> str:
    """``Pepite-Signature``: ``t=<timestamp>,v1=<hex>``, one ``v1`` per secret in use.

    Two secrets are in use for a while after a rotation: the new one first, then the
    previous one, so a receiver still holding the previous secret keeps verifying.
    """
    parts = [f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets_in_use)]
    return ",".join(parts)
