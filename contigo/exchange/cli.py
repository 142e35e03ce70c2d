"""Sync's commands: the central server's (``central``, ``device``) and the laptop's (``enrol``,
``sync``)."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from contigo.clikit import app_for, fail, read_secret
from contigo.errors import ContigoError


def central_app(ctx: click.Context) -> Flask:
    from sqlalchemy.exc import DatabaseError

    from contigo.exchange.central.devices import DeviceAdminFailed, require_central

    try:
        app = app_for(ctx, CONTIGO_MODE="central")
    except DatabaseError as exc:  # e.g. a laptop's folder: its database is SQLCipher
        raise click.ClickException(
            "not an initialised central server (run: contigo central init)"
        ) from exc
    try:
        require_central(app)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    return app


@click.group("central")
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
    from contigo.exchange.central.keys import initialise_central, key_path

    password = read_secret(password_file, "CONTIGO_PASSWORD", "Admin password", confirm=True)
    app = app_for(ctx, CONTIGO_MODE="central")
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
        fail(exc)
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

    app = central_app(ctx)
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


@click.group("device")
def device_group() -> None:
    """Enrolled laptops (run on the central server)."""


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
    from contigo.exchange.central.devices import DeviceAdminFailed, issue_enrolment_code

    app = central_app(ctx)
    try:
        enrolment = issue_enrolment_code(app, site_code, site_name=site_name, country=country)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    except ContigoError as exc:
        fail(exc)
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
    from contigo.exchange.central.devices import DeviceAdminFailed, revoke_device

    app = central_app(ctx)
    try:
        when = revoke_device(app, device_id)
    except DeviceAdminFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Device {device_id} revoked (since {when[:19]} UTC).")


@device_group.command("list")
@click.pass_context
def device_list_command(ctx: click.Context) -> None:
    """List enrolled laptops: id, site, label, enrolment, last contact and status."""
    from contigo.exchange.central.devices import list_devices

    rows = list_devices(central_app(ctx))
    for d in rows:
        status = "revoked" if d.revoked_at else "clock-suspect" if d.clock_suspect else "active"
        seen = (d.last_seen_at or "never")[:16]
        click.echo(
            f"{d.id}  {d.site_code:<10} {status:<13} enrolled {d.enrolled_at[:16]}  "
            f"seen {seen:<16}  {d.label}"
        )
    click.echo(f"{len(rows)} devices.", err=True)


@click.command("enrol")
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
    from contigo.exchange.laptop.client import enrol_as
    from sync.client.engine import SyncFailed

    password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
    app = app_for(ctx)
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
        fail(exc)
    click.echo(f"Laptop enrolled at site {site}; run 'contigo sync' to send and receive.")


@click.command("sync")
@click.option("--as", "as_user", required=True, help="A user whose password unlocks the laptop.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def sync_command(ctx: click.Context, as_user: str, as_password_file: str | None) -> None:
    """Push this laptop's changes to the central server, then pull everyone else's."""
    from contigo.exchange.laptop.client import sync_as
    from contigo.i18n import translate
    from sync.client.engine import ClockRefused, SyncFailed, UpgradeRequired

    password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
    app = app_for(ctx)
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
        fail(exc)
    r = summary.report
    click.echo(
        f"Sync done: pushed {r.pushed} ops ({r.acknowledged} accepted, {r.deferred} deferred, "
        f"{r.rejected} rejected); pulled {r.pulled} changes in {r.pages} pages; "
        f"outbox: {summary.waiting} waiting, {summary.rejected} need attention."
    )


#: Every command of this area, for the root group.
COMMANDS = (central_group, device_group, enrol_command, sync_command)
