"""Injected API faults, across every process: refused calls, lost answers, dropped connections, error rates.

A fault matches calls by method and path (a prefix, or a glob such as ``/files/*/content``) and fires on the
next ``count`` of them, or on each with probability ``rate``. It either refuses the call (``status``, nothing
done) or, with ``after``, lets the call do its work and then loses the answer: the client gets ``status`` or,
with ``reset``, a connection closed without any answer, as a timeout or a network fault would leave it.
"""

from __future__ import annotations

import fnmatch
import os
import random
import socket

from .store import Store

DOCUMENT = "faults"


class FaultError(ValueError):
    """A fault description with a bad field; ``missing`` when the field is absent."""

    def __init__(self, field: str, message: str, *, missing: bool = False):
        super().__init__(message)
        self.field, self.missing = field, missing


def parse_fault(data: dict) -> dict:
    """Return a normalised fault or raise FaultError naming the bad field."""
    status, count, rate = data.get("status"), data.get("count", 1), data.get("rate", 1.0)
    after, reset = data.get("after", False), data.get("reset", False)
    if not isinstance(after, bool) or not isinstance(reset, bool):
        raise FaultError("after" if not isinstance(after, bool) else "reset", "after and reset must be booleans.")
    if status is None and not reset:
        raise FaultError("status", "Missing required parameter: 'status'.", missing=True)
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultError("status", "status must be an HTTP error status between 400 and 599.")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise FaultError("count", "count must be a positive integer.")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 1:
        raise FaultError("rate", "rate must be a number above 0 and at most 1.")
    method, prefix, pattern = data.get("method"), data.get("path_prefix"), data.get("path")
    if method is not None and not isinstance(method, str):
        raise FaultError("method", "method must be a string such as 'GET'.")
    for name, value in (("path_prefix", prefix), ("path", pattern)):
        if value is not None and not (isinstance(value, str) and value.startswith("/")):
            raise FaultError(name, f"{name} must start with '/', e.g. '/batches'.")
    return {
        "status": status or 500,
        "count": count,
        "rate": float(rate),
        "after": after,
        "reset": reset,
        "method": method.upper() if method else None,
        "path_prefix": prefix,
        "path": pattern,
    }


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
    if fault["method"] not in (None, method) or not path.startswith(fault["path_prefix"] or ""):
        return False
    return fault.get("path") is None or fnmatch.fnmatchcase(path, fault["path"])


def take_fault(store: Store, method: str, path: str) -> dict | None:
    """Consume one use of the first fault matching this call that fires, and return it; or None."""
    if not os.path.exists(store.document_path(DOCUMENT)):
        return None  # the common case: no lock, no read
    with store.lock(DOCUMENT):
        faults = list_faults(store)
        for fault in faults:
            if _matches(fault, method, path) and random.random() < fault.get("rate", 1.0):
                fault["count"] -= 1
                remaining = [f for f in faults if f["count"] > 0]
                store.write_json(store.document_path(DOCUMENT), {"faults": remaining})
                return fault
    return None


def drop_connection(environ: dict) -> None:
    """Close the client's connection without an answer (Werkzeug's and gunicorn's servers expose the socket);
    where the server does not, the caller's error answer goes out instead."""
    conn = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
    if conn is None:
        return
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the client
