"""The clinical engine's command: score a CSV of child measurements (no database, no app)."""

from __future__ import annotations

from pathlib import Path

import click

COLUMNS_HELP = """\b
Input columns (a header row; any order; only sex is required):
  sex         1 or m (male), 2 or f (female)
  age_days    age in days
  weight_kg   weight in kilograms
  lenhei_cm   length or height in centimetres
  measure     l (lying: length), h (standing: height) or empty
  oedema      y or 1 (bilateral pitting oedema), n, 2 or empty
  headc_cm    head circumference in centimetres
  muac_cm     mid-upper arm circumference in centimetres
  triskin_mm  triceps skinfold in millimetres
  subskin_mm  subscapular skinfold in millimetres

\b
Output: the input columns, then clenhei and cbmi (length/height and BMI as used), c9mo_flag,
one z-score column per indicator (zwei, zlen, zwfl, zbmi, zhc, zac, zts, zss) and its flag
column (fwei, flen, ...): 1 when the z-score is implausible. Problems are listed on stderr.
"""


@click.command("zscore", epilog=COLUMNS_HELP)
@click.argument("in_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_csv", type=click.Path(dir_okay=False, writable=True))
def zscore_command(in_csv: str, out_csv: str) -> None:
    """Score a CSV of child measurements with the WHO Child Growth Standards."""
    from contigo.nutrition.csvio import CsvFormatError, score_csv

    folder = Path(out_csv).resolve().parent
    if not folder.is_dir():
        raise click.ClickException(f"cannot write {out_csv}: the folder {folder} does not exist")
    try:
        report = score_csv(in_csv, out_csv, progress=True)
    except CsvFormatError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {out_csv}: {exc.strerror}") from exc
    for problem in report.problems:
        click.echo(problem, err=True)
    click.echo(f"{report.rows} rows scored, {len(report.problems)} problems -> {out_csv}")
