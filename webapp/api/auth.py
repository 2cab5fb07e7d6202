"""Who calls the API, and which jobs they may touch: a personal token, and the owner rules of webapp.access.

Every API view runs after ``authenticate`` (a blueprint hook, so no view can forget it); views use
``current_actor``, ``owner_id``, ``creator_id`` and ``load_job`` and never look further.
"""

from __future__ import annotations

import logging

from flask import g, request

from webapp import access
from webapp.models import BatchJob, User
from webapp.security import Unauthorized, bearer_token
from webapp.services import accounts

log = logging.getLogger(__name__)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}


def authenticate() -> None:
    """Accept ``Authorization: Bearer <token>`` and nothing else; refuse with 401 otherwise."""
    token = bearer_token()
    user = accounts.user_for_token(token) if token else None
    if user is None:
        reason = "no bearer token" if token is None else "unknown, expired or revoked token"
        log.warning("api authentication refused: %s", reason, extra={"path": request.path})
        raise Unauthorized(
            f"authentication required: {reason}; send 'Authorization: Bearer <token>' "
            "(create a token on the dashboard's API tokens page)",
            headers=CHALLENGE,
        )
    g.api_user = user


def current_user() -> User:
    return g.api_user


def current_actor() -> str:
    """The caller's name for the job timeline."""
    return access.actor(current_user(), via="api")


def owner_id() -> int | None:
    """The account whose jobs the caller sees: their own, or None (every job) for an admin."""
    return access.owner_scope(current_user())


def creator_id() -> int:
    """The account a new job belongs to."""
    return current_user().id


def load_job(job_id: int) -> BatchJob:
    """The job, if the caller may use it; raises NotFound otherwise (a job of someone else does not exist)."""
    return access.load_job(job_id, current_user())
