"""Bearer tokens: made here, shown once, stored only as a hash.

A token is 32 random bytes (256 bits) in URL-safe base64. With that much entropy a plain
SHA-256 is the right hash: nothing to brute-force, and a lookup by hash costs one index probe
per request (a password hash such as scrypt would cost milliseconds of CPU on every batch).
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "pe_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > 512:
        return None
    return value
