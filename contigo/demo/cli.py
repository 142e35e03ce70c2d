"""The ``contigo demo`` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from contigo.clikit import app_for, fail
from contigo.errors import ContigoError


@click.command("demo")
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
    from contigo.demo.build import DEMO_PASSWORD, DemoOptions, build_demo

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

    app = app_for(ctx)
    try:
        report = build_demo(
            app, DemoOptions(persons=persons, women=women, seed=seed, password=password), progress
        )
    except ContigoError as exc:
        fail(exc)
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
