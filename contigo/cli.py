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


@central_group.command("recover-outbox")
@click.option(
    "--laptop",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The revoked laptop's instance folder (or a copy of it).",
)
@click.pass_context
def central_recover_outbox_command(ctx: click.Context, laptop: str) -> None:
    """Print a revoked laptop's unsent ops as JSON lines, opened with the central server's key
    (its users' key copies are gone: only this key opens its recovery copy)."""
    from contigo import crypto
    from contigo.recovery import recover_laptop_outbox
    from contigo.vault import get_vault

    app = _central(ctx)
    try:
        ops = recover_laptop_outbox(Path(laptop), get_vault(app).master_for_sealing())
    except FileNotFoundError as exc:
        raise click.ClickException(f"no laptop database in {laptop}") from exc
    except crypto.CryptoError as exc:
        raise click.ClickException(
            "the recovery copy does not open with this central server's key"
        ) from exc
    for op in ops:
        click.echo(op.to_json())
    click.echo(f"{len(ops)} ops recovered.", err=True)


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
        app = _app(ctx, AUTO_MIGRATE=True)
        engine = app.extensions["contigo.engine"]
        if uses_cipher(app) and as_user:
            from contigo.sync_client import unlock_as

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
        _fail(exc)
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

    if women > persons:
        raise click.ClickException("--women cannot be more than --persons")
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


@main.group("device")
def device_group() -> None:
    """Enrolled laptops (run on the central server)."""


def _central(ctx: click.Context) -> Flask:
    from sqlalchemy.exc import DatabaseError

    from contigo.sync_devices import DeviceAdminFailed, require_central

    try:
        app = _app(ctx, CONTIGO_MODE="central")
    except DatabaseError as exc:  # e.g. a laptop's folder: its database is SQLCipher
        raise click.ClickException(
            "not an initialised central server (run: contigo central init)"
        ) from exc
    try:
        require_central(app)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    return app


@device_group.command("enrol")
@click.option("--site", "site_code", required=True, help="Code of the laptop's site.")
@click.option("--label", default=None, help="Who the code is for (shown, not stored).")
@click.option("--site-name", default=None, help="Name of a site new to the central server.")
@click.option("--country", default=None, help="Country (ISO code) of a site new to the central.")
@click.pass_context
def device_enrol_command(
    ctx: click.Context,
    site_code: str,
    label: str | None,
    site_name: str | None,
    country: str | None,
) -> None:
    """Print a one-time code (valid 24 hours) that enrols one laptop at a site.

    The code alone goes to stdout, so a script can capture it; the explanation goes to stderr.
    """
    from contigo.sync_devices import DeviceAdminFailed, issue_enrolment_code

    app = _central(ctx)
    try:
        enrolment = issue_enrolment_code(app, site_code, site_name=site_name, country=country)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    except ContigoError as exc:
        _fail(exc)
    who = f" for {label}" if label else ""
    click.echo(
        f"One-time code{who} at site {enrolment.site_code}, valid until "
        f"{enrolment.expires_at[:16]} UTC. On the laptop: "
        "contigo enrol --central URL --code CODE --as USER",
        err=True,
    )
    click.echo(enrolment.code)


@device_group.command("revoke")
@click.argument("device_id")
@click.pass_context
def device_revoke_command(ctx: click.Context, device_id: str) -> None:
    """Revoke a laptop: every request it signs is refused from now on (its data stays)."""
    from contigo.sync_devices import DeviceAdminFailed, revoke_device

    app = _central(ctx)
    try:
        when = revoke_device(app, device_id)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Device {device_id} revoked (since {when[:19]} UTC).")


@device_group.command("list")
@click.pass_context
def device_list_command(ctx: click.Context) -> None:
    """List enrolled laptops: id, site, label, enrolment, last contact and status."""
    from contigo.sync_devices import list_devices

    rows = list_devices(_central(ctx))
    for d in rows:
        status = "revoked" if d.revoked_at else "clock-suspect" if d.clock_suspect else "active"
        seen = (d.last_seen_at or "never")[:16]
        click.echo(
            f"{d.id}  {d.site_code:<10} {status:<13} enrolled {d.enrolled_at[:16]}  "
            f"seen {seen:<16}  {d.label}"
        )
    click.echo(f"{len(rows)} devices.", err=True)


@main.command("enrol")
@click.option("--central", "central_url", required=True, help="https://… of the central server.")
@click.option(
    "--code",
    required=True,
    envvar="CONTIGO_ENROLMENT_CODE",
    help="One-time code from 'contigo device enrol' (or CONTIGO_ENROLMENT_CODE).",
)
@click.option("--label", default="laptop", show_default=True, help="How the central lists it.")
@click.option("--as", "as_user", required=True, help="A supervisor who unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def enrol_command(
    ctx: click.Context,
    central_url: str,
    code: str,
    label: str,
    as_user: str,
    as_password_file: str | None,
) -> None:
    """Enrol this laptop with the central server: create its signing key and register it."""
    from contigo.sync_client import enrol_as
    from sync.client.engine import SyncFailed

    password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
    app = _app(ctx)
    try:
        site = enrol_as(
            app,
            username=as_user,
            password=password,
            central_url=central_url,
            code=code,
            label=label,
        )
    except SyncFailed as exc:
        raise click.ClickException(exc.reason) from exc
    except ContigoError as exc:
        _fail(exc)
    click.echo(f"Laptop enrolled at site {site}; run 'contigo sync' to send and receive.")


@main.command("sync")
@click.option("--as", "as_user", required=True, help="A user whose password unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def sync_command(ctx: click.Context, as_user: str, as_password_file: str | None) -> None:
    """Push this laptop's changes to the central server, then pull everyone else's."""
    from contigo.i18n import translate
    from contigo.sync_client import sync_as
    from sync.client.engine import ClockRefused, SyncFailed, UpgradeRequired

    password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
    app = _app(ctx)
    try:
        summary = sync_as(
            app,
            username=as_user,
            password=password,
            progress=lambda line: click.echo(line, err=True),
        )
    except UpgradeRequired as exc:
        with app.app_context():
            raise click.ClickException(translate("schema.update_to_sync")) from exc
    except ClockRefused as exc:
        raise click.ClickException(exc.reason) from exc  # already in the user's language
    except SyncFailed as exc:
        raise click.ClickException(f"sync failed: {exc.reason}") from exc
    except ContigoError as exc:
        _fail(exc)
    r = summary.report
    click.echo(
        f"Sync done: pushed {r.pushed} ops ({r.acknowledged} accepted, {r.deferred} deferred, "
        f"{r.rejected} rejected); pulled {r.pulled} changes in {r.pages} pages; "
        f"outbox: {summary.waiting} waiting, {summary.rejected} need attention."
    )


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
@click.option("--as", "as_user", default=None, help="A user whose password unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def audit_verify_command(
    ctx: click.Context, as_user: str | None, as_password_file: str | None
) -> None:
    """Check the audit trail's hash chain; name the first broken entry and exit 1 if it is not
    intact. On central it needs no password (the chain holds ids and codes, no secret); a
    laptop's database is encrypted, so there a user's password (``--as``) opens it."""
    from contigo.audit.services import verify
    from contigo.db import session_scope, uses_cipher
    from contigo.i18n import translate
    from contigo.vault import get_vault

    app = _app(ctx)
    lang = app.config["DEFAULT_LANGUAGE"]
    try:
        if uses_cipher(app) and as_user:
            from contigo.sync_client import unlock_as

            password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
            unlock_as(app, as_user, password)
        with session_scope(app) as s:
            verdict = verify(s)
    except ContigoError as exc:
        _fail(exc)
    finally:
        if as_user:
            get_vault(app).lock()
    if verdict.problem is not None:
        reason = translate(verdict.problem, lang, **verdict.params)
        entry = verdict.broken_id or translate("auditchain.no_entry", lang)
        message = "auditchain.broken"
        raise click.ClickException(
            translate(message, lang, entry=entry, count=verdict.verified, reason=reason)
        )
    click.echo(translate("auditchain.intact", lang, count=verdict.verified))


# Operations (contigo.ops): central check/restored, and recover --from.
from contigo.ops.cli import register as register_ops  # noqa: E402

register_ops(main, central_group, _app)
