"""Who may call the simulator: the holder of its API key, sent as a bearer token and compared in constant time."""

from __future__ import annotations

import hmac


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case), or None."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def key_matches(token: str, expected: str | None) -> bool:
    """Whether ``token`` is the simulator's key; a simulator without a key lets nobody in."""
    return expected is not None and expected != "" and hmac.compare_digest(token.encode(), expected.encode())
