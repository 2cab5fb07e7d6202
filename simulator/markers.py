"""Failure-injection markers (``[[sim:...]]``) and the failure-rate draw (deterministic per batch)."""

from __future__ import annotations

import hashlib
import re

MARKER = re.compile(r"\[\[sim:([a-z_]+)(?:=([A-Za-z0-9_.-]+))?\]\]")
# expire: ends expired half way; slow_finalize: finalizing lasts SIMULATOR_SLOW_FINALIZE_SECONDS; hold: stays
# in_progress until cancelled (or its 24 h window runs out); empty_error_file_id: error_file_id "" instead of null.
BATCH_MARKERS = ("expire", "slow_finalize", "hold", "empty_error_file_id")


def find_markers(text: str) -> dict[str, str | None]:
    """Return ``{name: value}`` for every marker in ``text`` (value None for a bare ``[[sim:name]]``)."""
    return {match.group(1): match.group(2) for match in MARKER.finditer(text)}


def batch_markers(raw_line: str) -> set[str]:
    """Return the batch-wide markers found anywhere in one input line."""
    return {name for name in find_markers(raw_line) if name in BATCH_MARKERS}


def requested_status(markers: dict[str, str | None]) -> int | None:
    """Return the HTTP status a ``[[sim:status=NNN]]`` marker asks for, if it names a 4xx/5xx."""
    value = markers.get("status")
    if value and value.isdigit() and 400 <= int(value) <= 599:
        return int(value)
    return None


def drawn_to_fail(batch_id: str, custom_id: str, failure_rate: float) -> bool:
    """Return True for the ``failure_rate`` share of a batch's requests, drawn by (batch, custom_id).

    The same batch always fails the same requests (tests can predict them), but a request sent again goes in
    another batch and is drawn anew: like a real provider's passing error, a retry usually succeeds.
    """
    if failure_rate <= 0:
        return False
    digest = hashlib.sha256(f"{batch_id}\x00{custom_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < failure_rate
