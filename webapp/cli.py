"""Flask CLI commands: ``flask batches sync`` (one pass, for cron) and helpers for operators."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

batches_cli = AppGroup("batches", help="Drive the batch lifecycle from the shell or cron.")


@batches_cli.command("sync")
def sync_command() -> None:
    """Run one sync pass now (submit waiting chunks, poll provider batches, ingest results)."""
    from webapp.services import sync

    summary = sync.sync_all()
    click.echo(json.dumps(summary))


def init_app(app: Flask) -> None:
    app.cli.add_command(batches_cli)
