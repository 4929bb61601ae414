"""The one crypto interface for personal data at rest.

Everything that stores a phone or ID number calls ``get_cipher()`` and nothing else, so that a
certified provider (an SM4 hardware module under GM/T 0054) can replace the default by setting
``FIELD_CIPHER`` to another dotted path with the same three methods.

Tokens name the key that made them (``v1:<kid>:<base64>``), so keys rotate without downtime:
add a new key at the front of ``FIELD_ENCRYPTION_KEYS``, run ``manage.py rotate_field_keys``,
then drop the old key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

TOKEN_PREFIX = "v1"  # noqa: S105 - a format tag, not a secret


class FieldCipher(Protocol):
    current_kid: str

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...

    def blind_index(self, value: str, *, purpose: str) -> str: ...

    def kid_of(self, token: str) -> str: ...


def _decode_key(raw: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS: a key is not base64") from None
    if len(key) < 32:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS: each key needs at least 32 bytes")
    # Normalise longer secrets to 256 bits.
    return hashlib.sha256(key).digest() if len(key) != 32 else key


def parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys = []
    for item in spec.split(","):
        kid, sep, raw = item.strip().partition(":")
        if not sep or not kid or not raw:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS entries look like kid:base64key")
        keys.append((kid, _decode_key(raw)))
    if len({kid for kid, _ in keys}) != len(keys):
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS: key ids must be unique")
    return keys


class AesGcmCipher:
    """AES-256-GCM with a random 96-bit nonce; blind indexes are HMAC-SHA256 with their own key."""

    def __init__(self, keys: str, blind_index_key: str) -> None:
        parsed = parse_keys(keys)
        self.current_kid, current = parsed[0]
        self._aead = {kid: AESGCM(key) for kid, key in parsed}
        self._current = self._aead[self.current_kid]
        self._index_key = hashlib.sha256(blind_index_key.encode()).digest()

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        kid = self.current_kid.encode()
        sealed = self._current.encrypt(nonce, plaintext.encode("utf-8"), kid)
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{TOKEN_PREFIX}:{self.current_kid}:{body}"

    def kid_of(self, token: str) -> str:
        prefix, kid, _body = token.split(":", 2)
        if prefix != TOKEN_PREFIX:
            raise ValueError("not an encrypted field token")
        return kid

    def decrypt(self, token: str) -> str:
        kid = self.kid_of(token)
        body = token.split(":", 2)[2]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            aead = self._aead[kid]
        except KeyError:
            raise ValueError(f"no key {kid!r} configured for this token") from None
        return aead.decrypt(raw[:12], raw[12:], kid.encode()).decode("utf-8")

    def blind_index(self, value: str, *, purpose: str) -> str:
        # The purpose is mixed in so equal values in different columns do not share an index.
        mac = hmac.new(self._index_key, f"{purpose}\x00{value}".encode(), hashlib.sha256)
        return mac.hexdigest()


@functools.cache
def get_cipher() -> FieldCipher:
    cls = import_string(settings.FIELD_CIPHER)
    return cls(settings.FIELD_ENCRYPTION_KEYS, settings.BLIND_INDEX_KEY)
