"""The ``contigo`` command line.

Each command is thin: it parses options, calls one service and reports. Every question can be
answered by an option, so laptops can be provisioned by script; secrets come from
``--password-file`` or an environment variable, never from argv alone. Every failure exits
non-zero with a one-line reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask

from contigo.errors import ContigoError


def _app(ctx: click.Context, **overrides: Any) -> Flask:
    from contigo import create_app

    instance = ctx.find_root().params.get("instance")
    config: dict[str, Any] = {"IDLE_WATCH": False, **overrides}
    if instance:
        config["INSTANCE_PATH"] = instance
    app = create_app(config)
    ctx.call_on_close(app.extensions["contigo.engine"].dispose)
    return app


def read_secret(path: str | None, env: str, prompt: str, *, confirm: bool = False) -> str:
    """A secret from a file, else an environment variable, else an interactive prompt."""
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    if os.environ.get(env):
        return os.environ[env]
    if not sys.stdin.isatty():
        raise click.UsageError(f"give --password-file or set {env}")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value


def _fail(exc: ContigoError) -> None:
    detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
    raise click.ClickException(f"{exc.message()} {detail}".strip())


@click.group()
@click.version_option(package_name="contigo")
@click.option(
    "--instance",
    envvar="CONTIGO_INSTANCE",
    type=click.Path(file_okay=False),
    help="Instance folder (default ./instance).",
)
def main(instance: str | None) -> None:
    """Contigo: the nutrition record that follows the family."""


@main.command("zscore")
@click.argument("in_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_csv", type=click.Path(dir_okay=False, writable=True))
def zscore_command(in_csv: str, out_csv: str) -> None:
    """Score a CSV of child measurements with the WHO Child Growth Standards."""
    from contigo.nutrition.csvio import CsvFormatError, score_csv

    try:
        report = score_csv(in_csv, out_csv, progress=True)
    except CsvFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(f"{report.rows} rows scored, {len(report.problems)} problems -> {out_csv}")


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
    app = _app(ctx)
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
        _fail(exc)
    click.echo(f"Instance ready in {app.instance_path}; supervisor '{username}' at {site_code}.")


@main.group("central")
def central_group() -> None:
    """Commands of the central server."""


@central_group.command("init")
@click.option("--admin", "username", required=True, help="The first administrator.")
@click.option("--site-code", default="HQ", show_default=True)
@click.option("--site-name", default="Central", show_default=True)
@click.option("--country", required=True, help="Country of the central site (ISO code).")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def central_init_command(
    ctx: click.Context,
    username: str,
    site_code: str,
    site_name: str,
    country: str,
    password_file: str | None,
) -> None:
    """Create the server key (0600) and the first admin of a central server."""
    from contigo.central import initialise_central, key_path

    password = read_secret(password_file, "CONTIGO_PASSWORD", "Admin password", confirm=True)
    app = _app(ctx, CONTIGO_MODE="central")
    try:
        initialise_central(
            app,
            username=username,
            password=password,
            site_code=site_code,
            site_name=site_name,
            country=country,
        )
    except ContigoError as exc:
        _fail(exc)
    click.echo(f"Central server ready; key in {key_path(app)} (keep it secret, back it up).")


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
    app = _app(ctx, IDLE_WATCH=True)
    click.echo(f"Contigo on http://{host}:{port}/ (Ctrl+C to stop)")
    waitress.serve(app, host=host, port=port, threads=threads, ident="contigo")


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade_command(ctx: click.Context) -> None:
    """Migrate the database to the newest schema (a laptop's is backed up first)."""
    from contigo.migrate import current_revision

    app = _app(ctx, AUTO_MIGRATE=True)
    click.echo(f"Database at revision {current_revision(app.extensions['contigo.engine'])}.")


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

    app = _app(ctx)
    folder = Path(dest) if dest else Path(app.instance_path) / "backups"
    path = backup_sqlite(app.extensions["contigo.engine"], folder, "manual")
    if path is None:
        raise click.ClickException("only a SQLite database can be backed up this way")
    click.echo(f"Backup written to {path}")


@main.group("user")
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
    app = _app(ctx)
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
        _fail(exc)
    click.echo(f"User '{username}' ({role}) added at {site_code}.")


@main.command("demo")
@click.option(
    "--persons",
    default=380,
    show_default=True,
    type=click.IntRange(min=1),
    help="Persons to create, women included.",
)
@click.option(
    "--women",
    default=80,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many of them are pregnant or lactating women.",
)
@click.option(
    "--seed",
    default=20240607,
    show_default=True,
    type=int,
    help="Random seed: the same seed builds the same records.",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Password of every demo user (default: contigo-demo).",
)
@click.pass_context
def demo_command(
    ctx: click.Context, persons: int, women: int, seed: int, password_file: str | None
) -> None:
    """Build a demo instance: two countries, four sites, their staff and nine months of records.

    Refuses a folder that already holds an instance, so a demo never mixes with real data.
    """
    from contigo.config import instance_path_from_env
    from contigo.demo import DEMO_PASSWORD, DemoOptions, build_demo

    folder = Path(instance_path_from_env(ctx.find_root().params.get("instance")))
    if (folder / "contigo.sqlite3").exists():
        raise click.ClickException(
            f"{folder} already holds an instance; the demo needs an empty folder"
        )
    password = DEMO_PASSWORD
    if password_file:
        password = Path(password_file).read_text(encoding="utf-8").strip()
    tty = sys.stderr.isatty()

    def progress(done: int, total: int, encounters: int) -> None:
        if tty or done == total or done % 50 == 0:
            end = "" if tty and done < total else "\n"
            click.echo(f"\rpersons {done}/{total}, encounters {encounters}", err=True, nl=False)
            click.echo(end, err=True, nl=False)

    app = _app(ctx)
    try:
        report = build_demo(
            app, DemoOptions(persons=persons, women=women, seed=seed, password=password), progress
        )
    except ContigoError as exc:
        _fail(exc)
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(report.episodes.items()))
    click.echo(
        f"Demo ready in {app.instance_path}: {report.persons} persons, "
        f"{report.encounters} encounters; episodes: {outcomes}; "
        f"{report.due_today} visits due today, {report.overdue} overdue."
    )
    click.echo(
        f"Serve it with: contigo --instance {app.instance_path} serve  ->  http://127.0.0.1:5000/"
    )
    secret = f"the password in {password_file}" if password_file else f"password {DEMO_PASSWORD}"
    click.echo(f"Sign in with {secret} as:")
    for username, role, site in report.users:
        click.echo(f"  {username:<16} {role:<14} {site}")
