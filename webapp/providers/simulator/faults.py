"""Injected API faults: the next N matching calls answer an error status, across every process."""

from __future__ import annotations

import os

from .errors import invalid_value, missing_parameter
from .store import Store

DOCUMENT = "faults"


def parse_fault(data: dict) -> dict:
    """Return a normalised fault ``{status, count, method, path_prefix}`` or raise APIError(400)."""
    status, count = data.get("status"), data.get("count", 1)
    if status is None:
        raise missing_parameter("status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise invalid_value("status", "status must be an HTTP error status between 400 and 599.")
    if not isinstance(count, int) or count < 1:
        raise invalid_value("count", "count must be a positive integer.")
    method, prefix = data.get("method"), data.get("path_prefix")
    if method is not None and not isinstance(method, str):
        raise invalid_value("method", "method must be a string such as 'GET'.")
    if prefix is not None and not (isinstance(prefix, str) and prefix.startswith("/")):
        raise invalid_value("path_prefix", "path_prefix must start with '/', e.g. '/batches'.")
    return {"status": status, "count": count, "method": method.upper() if method else None, "path_prefix": prefix}


def list_faults(store: Store) -> list[dict]:
    return (store.read_json(store.document_path(DOCUMENT)) or {}).get("faults", [])


def add_fault(store: Store, fault: dict) -> list[dict]:
    with store.lock(DOCUMENT):
        faults = list_faults(store) + [fault]
        store.write_json(store.document_path(DOCUMENT), {"faults": faults})
    return faults


def clear_faults(store: Store) -> None:
    with store.lock(DOCUMENT):
        try:
            os.remove(store.document_path(DOCUMENT))
        except FileNotFoundError:
            pass  # nothing to clear


def _matches(fault: dict, method: str, path: str) -> bool:
    return (fault["method"] in (None, method)) and path.startswith(fault["path_prefix"] or "")


def take_fault(store: Store, method: str, path: str) -> int | None:
    """Consume one use of the first fault matching this call and return its status, or None."""
    if not os.path.exists(store.document_path(DOCUMENT)):
        return None  # the common case: no lock, no read
    with store.lock(DOCUMENT):
        faults = list_faults(store)
        for fault in faults:
            if _matches(fault, method, path):
                fault["count"] -= 1
                remaining = [f for f in faults if f["count"] > 0]
                store.write_json(store.document_path(DOCUMENT), {"faults": remaining})
                return fault["status"]
    return None
