"""Flask CLI commands: ``flask batches sync`` (one pass, for cron), ``flask batches sweep``, account helpers."""

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


@batches_cli.command("sweep")
def sweep_command() -> None:
    """Delete provider files, and cancel provider batches, of ours that no local batch uses (DELETE_PROVIDER_FILES)."""
    from webapp.services import reconcile

    click.echo(json.dumps(reconcile.sweep_all()))


users_cli = AppGroup("users", help="Manage accounts from the shell.")


@users_cli.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.password_option(help="The password (asked for when not given).")
def create_user_command(email: str, admin: bool, password: str) -> None:
    """Create an account (the first admin, or anyone later)."""
    from webapp.errors import AppError
    from webapp.services import accounts

    try:
        user = accounts.create_user(email, password, role="admin" if admin else "member")
    except AppError as exc:
        details = "; ".join(d["message"] for d in exc.details)
        raise click.ClickException(f"{exc.message}{': ' + details if details else ''}") from None
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("list")
def list_users_command() -> None:
    """List accounts with their role and state."""
    from webapp.services import accounts

    for user in accounts.list_users():
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{'active' if user.active else 'disabled'}")


def init_app(app: Flask) -> None:
    app.cli.add_command(batches_cli)
    app.cli.add_command(users_cli)
