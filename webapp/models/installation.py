"""This installation's identity at the provider: a random id written once, shared by every process."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, utcnow

SINGLETON_ID = 1


class Installation(Base):
    """One row. Several installations may share a provider account: batches and files carry ``install_id``
    so each finds its own again and never touches another's."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(primary_key=True, default=SINGLETON_ID)
    install_id: Mapped[str] = mapped_column(String(32))
    # What batches created before the random id carry (it was derived from SECRET_KEY): recognised, never sent.
    legacy_install_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
