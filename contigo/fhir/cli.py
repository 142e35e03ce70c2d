"""``contigo fhir export`` and ``contigo fhir import``: a person's IPS Bundle to a file, and a
Bundle from a file into this instance (each as a user whose password unlocks the laptop)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from sqlalchemy import select

from contigo.auth.models import User
from contigo.auth.scope import CLINICAL_WRITERS
from contigo.clikit import app_for, fail, read_secret
from contigo.db import session_scope
from contigo.errors import ContigoError
from contigo.fhir.bundle_import import import_bundle
from contigo.fhir.services import person_bundle
from contigo.unlock import unlock_as
from contigo.vault import get_vault

T = TypeVar("T")


def _as_user(
    app: Flask, username: str, password_file: str | None, work: Callable[[Any, User], T],
    roles: frozenset[str] | None = None,
) -> T:  # fmt: skip
    password = read_secret(password_file, "CONTIGO_PASSWORD", f"Password of {username}")
    try:
        unlock_as(app, username, password, roles)
        with app.test_request_context(), session_scope(app) as s:
            user = s.scalar(select(User).where(User.username == username))
            assert user is not None
            return work(s, user)
    except ContigoError as exc:
        fail(exc)
        raise  # fail always raises
    finally:
        get_vault(app).lock()


@click.group("fhir")
def fhir_group() -> None:
    """FHIR International Patient Summary export and import."""


@fhir_group.command("export")
@click.argument("person_id")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--username", required=True, help="A user who may read the person.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def export_command(
    ctx: click.Context, person_id: str, out: str, username: str, password_file: str | None
) -> None:
    """Write PERSON_ID's IPS Bundle (FHIR R4B JSON) to OUT; the export is audited."""
    app = app_for(ctx)
    bundle = _as_user(
        app, username, password_file,
        lambda s, user: person_bundle(s, get_vault(app), user, person_id, user.home_site_id),
    )  # fmt: skip
    Path(out).write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
    click.echo(f"IPS written to {out}")


@fhir_group.command("import")
@click.argument("bundle_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--username", required=True, help="A health worker or supervisor of this site.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["child", "woman"]), default="child")
@click.pass_context
def import_command(
    ctx: click.Context, bundle_file: str, username: str, password_file: str | None, kind: str
) -> None:
    """Register BUNDLE_FILE's Patient at the user's site and record its visits."""
    try:
        bundle = json.loads(Path(bundle_file).read_text(encoding="utf-8"))
    except ValueError:
        raise click.ClickException(f"{bundle_file} is not JSON") from None
    app = app_for(ctx)
    person_id = _as_user(
        app, username, password_file,
        lambda s, user: import_bundle(s, get_vault(app), user, user.home_site_id, bundle, kind),
        CLINICAL_WRITERS,
    )  # fmt: skip
    click.echo(f"Imported as person {person_id}")
