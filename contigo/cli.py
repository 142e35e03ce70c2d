"""The ``contigo`` command line: the instance's own commands (``init``, ``serve``, ``db``,
``backup``) are here; each area's commands sit beside the area, in its ``cli.py``, and are
gathered below.

Each command is thin: it parses options, calls one service and reports. Every question can be
answered by an option, so laptops can be provisioned by script; secrets come from
``--password-file`` or an environment variable, never from argv alone. Every failure exits
non-zero with a one-line reason.
"""

from __future__ import annotations

from pathlib import Path

import click

from contigo.app import create_app
from contigo.audit.cli import audit_group
from contigo.auth.cli import user_group
from contigo.clikit import APP_FACTORY, app_for, fail, read_secret
from contigo.demo.cli import demo_command
from contigo.errors import ContigoError
from contigo.exchange.cli import COMMANDS as SYNC_COMMANDS
from contigo.exchange.cli import central_group
from contigo.fhir.cli import fhir_group
from contigo.nutrition.cli import zscore_command
from contigo.ops.cli import check_command, recover_command, restored_command
from contigo.referrals.cli import facility_group
from contigo.reports.cli import reports_group


@click.group()
@click.version_option(package_name="contigo")
@click.option(
    "--instance",
    envvar="CONTIGO_INSTANCE",
    type=click.Path(file_okay=False),
    help="Instance folder (default ./instance).",
)
@click.pass_context
def main(ctx: click.Context, instance: str | None) -> None:
    """Contigo: the nutrition record that follows the family."""
    ctx.meta[APP_FACTORY] = create_app


@main.command("init")
@click.option("--site-code", required=True)
@click.option("--site-name", required=True)
@click.option("--country", required=True, help="ISO code: CO, EC, PE, PA, BR …")
@click.option("--elevation", type=int, default=0, show_default=True, help="Metres.")
@click.option("--username", required=True, help="The first supervisor.")
@click.option("--display-name", default=None)
@click.option("--language", type=click.Choice(["es", "pt", "en"]), default="es")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def init_command(
    ctx: click.Context,
    site_code: str,
    site_name: str,
    country: str,
    elevation: int,
    username: str,
    display_name: str | None,
    language: str,
    password_file: str | None,
) -> None:
    """Create an instance: database, master key, the site and its first supervisor."""
    from contigo.setup import initialise

    password = read_secret(password_file, "CONTIGO_PASSWORD", "Supervisor password", confirm=True)
    app = app_for(ctx)
    try:
        initialise(
            app,
            site_code=site_code,
            site_name=site_name,
            country=country,
            elevation_m=elevation,
            username=username,
            display_name=display_name or username,
            language=language,
            password=password,
        )
    except ContigoError as exc:
        fail(exc)
    click.echo(f"Instance ready in {app.instance_path}; supervisor '{username}' at {site_code}.")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, type=int, show_default=True)
@click.option("--threads", default=4, type=int, show_default=True)
@click.pass_context
def serve_command(ctx: click.Context, host: str, port: int, threads: int) -> None:
    """Serve the field app with waitress on the loopback interface."""
    import waitress

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise click.ClickException("the field app listens on 127.0.0.1 only")
    app = app_for(ctx, IDLE_WATCH=True)
    click.echo(f"Contigo on http://{host}:{port}/ (Ctrl+C to stop)")
    waitress.serve(app, host=host, port=port, threads=threads, ident="contigo")


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--as", "as_user", default=None, help="A user whose password unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def db_upgrade_command(
    ctx: click.Context, as_user: str | None, as_password_file: str | None
) -> None:
    """Migrate the database to the newest schema (a laptop's is backed up first).

    A laptop's database is encrypted (SQLCipher) and migrated when a user unlocks it; with
    ``--as`` that happens now (a plain database of an older version is converted first).
    """
    from contigo.db import is_plain_sqlite, uses_cipher
    from contigo.migrate import MigrationFailed, current_revision
    from contigo.vault import get_vault

    try:
        app = app_for(ctx, AUTO_MIGRATE=True)
        engine = app.extensions["contigo.engine"]
        if uses_cipher(app) and as_user:
            from contigo.unlock import unlock_as

            password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
            unlock_as(app, as_user, password)
            try:
                click.echo(f"Database encrypted, at revision {current_revision(engine)}.")
            finally:
                get_vault(app).lock()
            return
        if uses_cipher(app) and not is_plain_sqlite(Path(engine.url.database)):
            click.echo(
                "Database encrypted: it is brought to the newest revision when a user unlocks "
                "it (or now, with --as)."
            )
            return
    except MigrationFailed as exc:
        raise click.ClickException(f"{exc}; the database was restored from its backup") from exc
    except ContigoError as exc:
        fail(exc)
    click.echo(f"Database at revision {current_revision(engine)}.")


@main.command("backup")
@click.option(
    "--to",
    "dest",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the copy (default: the instance's backups/).",
)
@click.pass_context
def backup_command(ctx: click.Context, dest: str | None) -> None:
    """Copy the database (still encrypted) with SQLite's online backup."""
    from contigo.migrate import backup_sqlite

    app = app_for(ctx)
    folder = Path(dest) if dest else Path(app.instance_path) / "backups"
    path = backup_sqlite(app.extensions["contigo.engine"], folder, "manual")
    if path is None:
        raise click.ClickException("only a SQLite database can be backed up this way")
    click.echo(f"Backup written to {path}")


for _command in (zscore_command, user_group, demo_command, audit_group, *SYNC_COMMANDS):
    main.add_command(_command)
main.add_command(reports_group)
main.add_command(recover_command)
for _command in (check_command, restored_command):
    central_group.add_command(_command)
main.add_command(facility_group)
main.add_command(fhir_group)
