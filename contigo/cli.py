"""The ``contigo`` command line.

Each command is thin: it parses options, calls one service and reports. Every failure exits
non-zero with a one-line reason.
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="contigo")
def main() -> None:
    """Contigo: the nutrition record that follows the family."""


@main.command("zscore")
@click.argument("in_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_csv", type=click.Path(dir_okay=False, writable=True))
def zscore_command(in_csv: str, out_csv: str) -> None:
    """Score a CSV of child measurements with the WHO Child Growth Standards."""
    from contigo.nutrition.csvio import score_csv

    report = score_csv(in_csv, out_csv, progress=True)
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(f"{report.rows} rows scored, {len(report.problems)} problems -> {out_csv}")
