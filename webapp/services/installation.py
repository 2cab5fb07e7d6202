"""The installation's random id: read once per process, created by whichever process needs it first."""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import Installation
from webapp.models.installation import SINGLETON_ID

EXTENSION_KEY = "batches_install_ids"


def install_id() -> str:
    """This installation's id (16 random hex digits): it names our batches and files at the provider."""
    return install_ids()[0]


def install_ids() -> tuple[str, ...]:
    """Every id our batches may carry: the current one first, then the legacy one of batches made before it."""
    cached = current_app.extensions.get(EXTENSION_KEY)
    if cached is not None:
        return cached
    row = _read()
    if row is None:  # a database made by create_all: migrations write the row
        return (_create(),)
    ids = (row[0], row[1]) if row[1] else (row[0],)
    current_app.extensions[EXTENSION_KEY] = ids  # only once read back as stored: a rolled-back id is never kept
    return ids


def _read() -> tuple[str, str | None] | None:
    row = db.session.execute(
        select(Installation.install_id, Installation.legacy_install_id).where(Installation.id == SINGLETON_ID)
    ).first()
    return (row[0], row[1]) if row else None


def _create() -> str:
    """Add the row in the caller's transaction (its commit stores it, before anything is sent that carries the
    id); of two processes racing, the second reads the first one's id."""
    try:
        with db.session.begin_nested():
            db.session.add(Installation(id=SINGLETON_ID, install_id=secrets.token_hex(8)))
    except IntegrityError:
        pass  # created by another process meanwhile
    return db.session.execute(select(Installation.install_id).where(Installation.id == SINGLETON_ID)).scalar_one()
