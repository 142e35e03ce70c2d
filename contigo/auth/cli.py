"""User commands of the ``contigo`` command line."""

from __future__ import annotations

import click

from contigo.clikit import app_for, fail, read_secret
from contigo.errors import ContigoError


@click.group("user")
def user_group() -> None:
    """User commands."""


@user_group.command("add")
@click.option("--username", required=True)
@click.option("--display-name", default=None)
@click.option(
    "--role",
    type=click.Choice(["health_worker", "supervisor", "nutrition_lead", "admin"]),
    required=True,
)
@click.option("--site", "site_code", required=True, help="Home site code.")
@click.option("--language", type=click.Choice(["es", "pt", "en"]), default="es")
@click.option("--country", default=None, help="For nutrition leads: the country they review.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "as_user", required=True, help="A supervisor who unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def user_add_command(
    ctx: click.Context,
    username: str,
    display_name: str | None,
    role: str,
    site_code: str,
    language: str,
    country: str | None,
    password_file: str | None,
    as_user: str,
    as_password_file: str | None,
) -> None:
    """Add a user; a supervisor's password unlocks the master key to give them a copy."""
    from contigo.setup import add_user_as

    password = read_secret(
        password_file, "CONTIGO_NEW_PASSWORD", "New user's password", confirm=True
    )
    as_password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
    app = app_for(ctx)
    try:
        add_user_as(
            app,
            as_user=as_user,
            as_password=as_password,
            username=username,
            display_name=display_name or username,
            role=role,
            site_code=site_code,
            language=language,
            country=country,
            password=password,
        )
    except ContigoError as exc:
        fail(exc)
    click.echo(f"User '{username}' ({role}) added at {site_code}.")
