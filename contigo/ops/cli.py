"""Operators' commands: ``contigo central check``, ``contigo central restored`` and
``contigo recover --from DIR`` (gathered by :mod:`contigo.cli`). Each is thin: it opens central,
calls one service, reports."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask

from contigo.clikit import app_for, fail
from contigo.errors import ContigoError
from contigo.i18n import translate, translate_plural


def _central(ctx: click.Context) -> Flask:
    """Central's app over the instance folder the root command names; refuses anything else."""
    from sqlalchemy.exc import DatabaseError

    from contigo.exchange.central.keys import key_path

    try:
        app = app_for(ctx, CONTIGO_MODE="central")
    except DatabaseError as exc:  # e.g. a laptop's folder: its database is SQLCipher
        raise click.ClickException(translate("ops.not_central")) from exc
    if not key_path(app).exists():
        raise click.ClickException(translate("ops.not_central"))
    return app


@click.command("check")
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="List devices not seen for this many days (default CHECK_UNSEEN_DAYS, 7).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
@click.pass_context
def check_command(ctx: click.Context, days: int | None, as_json: bool) -> None:
    """Report what /readyz reports, and the devices not seen for DAYS days; exits 1 when
    central is not ready."""
    from contigo.ops import health

    app = _central(ctx)
    days = int(app.config["CHECK_UNSEEN_DAYS"]) if days is None else days
    checks = health.readiness(app)
    unseen = health.unseen_devices(app, days) if checks[0].ok else []
    if as_json:
        out = {
            "ready": health.ready(checks),
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
            "unseen_days": days,
            "unseen": [
                {"device": u.device_id, "site": u.site, "last_seen_at": u.last_seen_at}
                for u in unseen
            ],
        }
        click.echo(json.dumps(out, sort_keys=True))
    else:
        for c in checks:
            click.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        devices = translate_plural("field2.ops.devices", len(unseen))
        since = translate_plural("field2.days", days)
        click.echo(translate("ops.check.unseen", devices=devices, days=since))
        for u in unseen:
            never = translate("ops.check.never")
            click.echo(f"  {u.device_id} {u.site} {u.label!r} {u.last_seen_at or never}")
    if not health.ready(checks):
        raise click.ClickException(translate("ops.check.not_ready"))


@click.command("restored")
@click.pass_context
def restored_command(ctx: click.Context) -> None:
    """After restoring central's database from a backup, before serving it: start a new
    incarnation, so every laptop sends again what the backup lacks and re-reads the feed."""
    from contigo.ops.incarnation import restored

    inc = restored(_central(ctx))
    click.echo(translate("ops.restored", number=inc.number, floor=inc.floor_seq))


@click.command("recover")
@click.option(
    "--from",
    "folder",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The dead laptop's instance folder, or a copy of it (never written).",
)
@click.pass_context
def recover_command(ctx: click.Context, folder: str) -> None:
    """Bring a dead laptop's unsent ops to central as that laptop's ops, with central's key
    (run on central). Ops that had already arrived are not applied twice."""
    from contigo import crypto
    from contigo.ops.recover import recover_from

    app = _central(ctx)
    try:
        done = recover_from(app, Path(folder))
    except FileNotFoundError as exc:
        raise click.ClickException(translate("ops.recover.no_database", folder=folder)) from exc
    except crypto.CryptoError as exc:
        raise click.ClickException(translate("ops.recover.wrong_key")) from exc
    except ContigoError as exc:
        fail(exc)
    results = ", ".join(f"{k} {v}" for k, v in sorted(done.results.items())) or "-"
    click.echo(
        translate(
            "ops.recover.done",
            device=done.device_id,
            sent=translate_plural("field2.ops.sent", done.sent),
            results=results,
            already=translate_plural("field2.ops.already", done.already_on_central),
            refused=translate_plural("field2.ops.refused", done.refused_after_revocation),
        )
    )
