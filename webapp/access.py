"""Who is acting and what they may see: members their own jobs, admins every job."""

from __future__ import annotations

from webapp.models import BatchJob, User
from webapp.services import jobs


def owner_scope(user: User) -> int | None:
    """The owner whose jobs ``user`` sees: their own, or None (all jobs) for an admin."""
    return None if user.is_admin else user.id


def actor(user: User, via: str | None = None) -> str:
    """How the timeline names the person behind an action (``via`` e.g. "api")."""
    return f"{user.email} ({via})" if via else user.email


def load_job(job_id: int, user: User) -> BatchJob:
    """The job if ``user`` may see it; NotFound otherwise, so ids of others' jobs cannot be probed."""
    return jobs.get_job(job_id, owner_id=owner_scope(user))
