"""What every dialect's blueprint does around a call: the path as its clients see it, and injected faults."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Response, current_app, g, request

from .faults import drop_connection, take_fault
from .settings import current_store

PREFIXES = "simulator_prefixes"  # in app.extensions: blueprint name -> the prefix it is mounted at


def remember_prefix(state) -> None:
    """``Blueprint.record`` hook: faults match paths as the API client sees them (``/batches``), wherever the app
    mounts the dialect."""
    state.app.extensions.setdefault(PREFIXES, {})[state.name] = state.url_prefix or ""


def api_path() -> str:
    """The request path below the blueprint's mount point, e.g. ``/batches/batch_abc``."""
    prefix = current_app.extensions.get(PREFIXES, {}).get(request.blueprint, "")
    return request.path[len(prefix) :] if request.path.startswith(prefix) else request.path


def inject_fault(refusal: Callable[[int], Exception]) -> None:
    """Take the next injected fault matching this call, if one fires. A refusal raises ``refusal(status)`` (after
    dropping the connection, for a reset); a lost answer lets the call do its work and ``lose_answer`` loses it."""
    store = current_store()
    store.purge_expired(time.time())
    fault = take_fault(store, request.method, api_path())
    if fault is None:
        return
    if fault["after"]:
        g.lost_answer = fault
        return
    if fault["reset"]:
        drop_connection(request.environ)
    raise refusal(fault["status"])


def lose_answer(response: Response, render: Callable[[int], Response]) -> Response:
    """``after_request``: the answer of a call whose work is done is replaced by ``render(status)``, or never sent."""
    fault = g.pop("lost_answer", None)
    if fault is None:
        return response
    if fault["reset"]:
        drop_connection(request.environ)
        return response  # never reaches the client
    return render(fault["status"])
