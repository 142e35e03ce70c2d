"""``contigo reports …``: the reporting table's commands."""

from __future__ import annotations

import click

from contigo.clikit import app_for, fail, read_secret
from contigo.errors import ContigoError
from contigo.reports.rebuild import person_count, rebuild_all
from contigo.unlock import unlock_as
from contigo.vault import get_vault


@click.group("reports")
def reports_group() -> None:
    """The de-identified reporting table."""


@reports_group.command("rebuild")
@click.option("--as", "as_user", default=None, help="On a laptop: a user who unlocks it.")
@click.option("--as-password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def rebuild_command(ctx: click.Context, as_user: str | None, as_password_file: str | None) -> None:
    """Rebuild the reporting table from the record (central: with the server key; a laptop:
    unlocked with ``--as``), with a progress bar."""
    app = app_for(ctx)
    vault = get_vault(app)
    try:
        if not vault.is_unlocked:
            if not as_user:
                raise click.UsageError("the database is locked: give --as USER")
            password = read_secret(as_password_file, "CONTIGO_PASSWORD", f"Password of {as_user}")
            unlock_as(app, as_user, password)
        with click.progressbar(length=person_count(app), label="Persons") as bar:
            persons, facts = rebuild_all(app, bar.update)
    except ContigoError as exc:
        fail(exc)
    finally:
        if as_user:
            vault.lock()
    click.echo(f"Reporting table rebuilt: {persons} persons, {facts} facts.")
