"""Values in the shared cache that nothing else sharing it can read or forge.

The cache (Redis in production) may be shared with other services, and anyone who can `GET` a
key there reads what we stored. A remote problem bundle holds hidden tests and reference
solutions, so it is stored sealed: Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`)
under a key derived from `SECRET_KEY` with HKDF. Sealing also authenticates: a value written by
anyone without the key, one moved from another cache key, or one older than `max_age` is
ignored (a cache miss), never trusted. `SECRET_KEY_FALLBACKS` still open what was sealed before a
key rotation.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("co.sealed_cache")

_KEY_PURPOSE = b"co sealed cache v1"


@functools.lru_cache(maxsize=4)
def _cipher(secrets: tuple[str, ...]) -> MultiFernet:
    """One Fernet key per secret (the current one first: it seals, all of them open)."""
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(secret.encode())
                )
            )
            for secret in secrets
        ]
    )


def _current_cipher() -> MultiFernet:
    return _cipher((settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])))


def sealed_cache_set(key: str, value: Any, *, timeout: float) -> None:
    """Store a JSON-serializable value encrypted and bound to its key."""
    plain = json.dumps({"key": key, "value": value}, separators=(",", ":")).encode()
    cache.set(key, _current_cipher().encrypt(plain), timeout=timeout)


def sealed_cache_get(key: str, *, max_age: int, default: Any = None) -> Any:
    """The value `sealed_cache_set` stored under `key` within `max_age` seconds, else `default`."""
    token = cache.get(key)
    if token is None:
        return default
    try:
        sealed = json.loads(_current_cipher().decrypt(token, ttl=max_age))
    except (InvalidToken, TypeError, ValueError):
        logger.warning("a sealed cache entry could not be opened (expired, sealed with another key, or forged); ignored")
        return default
    if not isinstance(sealed, dict) or sealed.get("key") != key:
        logger.warning("a sealed cache entry was stored under another key; ignored")
        return default
    return sealed.get("value")
