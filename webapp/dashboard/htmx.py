"""htmx: one URL serves a whole page or just its fragment, and this module alone decides which."""

from __future__ import annotations

from flask import make_response, render_template

from webapp.extensions import htmx

STOP_POLLING = 286  # htmx stops an "every Ns" trigger when a poll answers with this status


def wants_fragment() -> bool:
    """True for htmx's own requests; boosted links and history restores need the whole page."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def page_or_fragment(page: str, fragment: str, /, *, status: int = 200, done: bool = False, **context):
    """Render ``page`` for browsers and ``fragment`` for htmx (``done`` ends its polling with 286).

    The page includes the fragment, so the two cannot drift; caches are told the answer varies.
    """
    if wants_fragment():
        return fragment_response(fragment, done=done, **context)
    return _response(render_template(page, **context), status)


def fragment_response(fragment: str, /, *, done: bool = False, **context):
    """Render a fragment for htmx; 286 when ``done`` tells a polling element to stop.

    The fragment sees ``is_fragment``: only an answer to htmx may carry out-of-band parts (``hx-swap-oob``).
    """
    return _response(render_template(fragment, is_fragment=True, **context), STOP_POLLING if done else 200)


def _response(html: str, status: int):
    response = make_response(html, status)
    response.vary.add("HX-Request")
    return response
