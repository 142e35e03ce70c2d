"""The clinical engine's command: score a CSV of child measurements (no database, no app)."""

from __future__ import annotations

import click


@click.command("zscore")
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
