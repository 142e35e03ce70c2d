"""``contigo reports …``: the reporting table's commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask

from contigo.auth import services as auth
from contigo.db import session_scope
from contigo.errors import ContigoError
from contigo.reports.rebuild import person_count, rebuild_all
from contigo.vault import get_vault


def _secret(path: str | None, prompt: str) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    if os.environ.get("CONTIGO_PASSWORD"):
        return os.environ["CONTIGO_PASSWORD"]
    if not sys.stdin.isatty():
        raise click.UsageError("give --as-password-file or set CONTIGO_PASSWORD")
    value: str = click.prompt(prompt, hide_input=True)
    return value


AppFactory = Callable[[click.Context], Flask]


def reports_group(make_app: AppFactory) -> click.Group:
    """The ``reports`` commands, making their app with ``make_app`` (the root command's, handed
    over where the group is added: this module never imports the app factory back)."""

    @click.group("reports")
    def group() -> None:
        """The de-identified reporting table."""

    group.add_command(_rebuild_command(make_app))
    return group


def _rebuild_command(make_app: AppFactory) -> click.Command:
    @click.command("rebuild")
    @click.option("--as", "as_user", default=None, help="On a laptop: a user who unlocks it.")
    @click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
    @click.pass_context
    def rebuild_command(
        ctx: click.Context, as_user: str | None, as_password_file: str | None
    ) -> None:
        """Rebuild the reporting table from the record (central: with the server key; a laptop:
        unlocked with ``--as``), with a progress bar."""
        try:
            app = make_app(ctx)
            vault = get_vault(app)
            if not vault.is_unlocked:
                if not as_user:
                    raise click.UsageError("the database is locked: give --as USER")
                password = _secret(as_password_file, f"Password of {as_user}")
                with session_scope(app) as s:
                    auth.authenticate(
                        s,
                        vault,
                        as_user,
                        password,
                        max_failed=app.config["MAX_FAILED_LOGINS"],
                        lockout_s=app.config["LOCKOUT_SECONDS"],
                    )
            try:
                with click.progressbar(length=person_count(app), label="Persons") as bar:
                    persons, facts = rebuild_all(app, bar.update)
            finally:
                if as_user:
                    vault.lock()
        except ContigoError as exc:
            raise click.ClickException(exc.message()) from exc
        click.echo(f"Reporting table rebuilt: {persons} persons, {facts} facts.")

    return rebuild_command
