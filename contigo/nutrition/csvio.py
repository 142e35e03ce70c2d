"""Score a CSV file of child measurements with the WHO Child Growth Standards.

Input columns follow WHO's conventions (see ``shared/reference/README.md``): ``sex`` (1/2, or
m/f), ``age_days``, ``weight_kg``, ``lenhei_cm``, ``measure`` (l/h/empty), ``oedema``
(y/n/empty), ``headc_cm``, ``muac_cm`` (centimetres), ``triskin_mm``, ``subskin_mm``. Only
``sex`` is required; an absent column counts as not measured. Every input column, known or not,
is written back unchanged, followed by :data:`~contigo.nutrition.batch.OUTPUT_COLUMNS`.

Problems are reported per row, never by aborting the file. Row numbers count data rows from 1
(the header is not counted):

- a value WHO's software would reject (a number that does not parse, sex other than 1/2/m/f,
  an unknown ``measure`` or ``oedema`` code, a negative age) makes the row *bad*: its outputs
  are left empty;
- an empty sex, or a measurement above the physical bounds of
  :data:`contigo.nutrition.zscores.UPPER_BOUNDS` (usually a unit slip), is reported but the
  row is scored as WHO's software scores it, so results stay comparable with WHO's.

Measurements ≤ 0 give empty z-scores without a message, as in WHO's software.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TextIO

import numpy as np

from contigo.nutrition.batch import OUTPUT_COLUMNS, compute_batch
from contigo.nutrition.zscores import UPPER_BOUNDS

__all__ = ["CsvFormatError", "ScoreReport", "score_csv"]

CHUNK_ROWS = 10_000
PROGRESS_MIN_ROWS = 10_000

_NUMERIC = ("age_days", "weight_kg", "lenhei_cm", "headc_cm", "muac_cm", "triskin_mm", "subskin_mm")
# Accepted texts (case-insensitive) per coded column, and how a message lists them.
_SEX: dict[str, object] = {"1": 1.0, "2": 2.0, "m": 1.0, "f": 2.0, "": math.nan}
_MEASURE: dict[str, object] = {"l": "l", "h": "h", "": ""}
_OEDEMA: dict[str, object] = {"y": "y", "1": "y", "n": "n", "2": "n", "": "n"}
_ALLOWED = {"sex": "1, 2, m or f", "measure": "l, h or empty", "oedema": "y, n, 1, 2 or empty"}

PathLike = str | os.PathLike[str]


def _canonical_code(text: str) -> str:
    """Lower-case ``text``; a number such as ``1.0`` becomes ``1`` (spreadsheets write those)."""
    try:
        number = float(text)
    except ValueError:
        return text.lower()
    return str(int(number)) if number.is_integer() else text


class CsvFormatError(ValueError):
    """The file cannot be scored at all (no header, or no ``sex`` column)."""


@dataclass(frozen=True)
class ScoreReport:
    """What :func:`score_csv` did: data rows written, and one message per problem found."""

    rows: int
    problems: list[str] = field(default_factory=list)


class _Progress:
    """A one-line percentage on stderr, redrawn with ``\\r``; plain ASCII, so Windows-safe."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = max(total, 1)
        self.stream = stream

    def update(self, done: int) -> None:
        self.stream.write(f"\rscoring: {100 * done // self.total:3d}% ({done:,} rows)")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _count_rows(path: PathLike) -> int:
    """Approximate data rows (newlines minus the header), read fast in binary chunks."""
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 1


def _progress(path: PathLike, enabled: bool) -> _Progress | None:
    """A progress line only when asked for, on an interactive stderr, for a large file."""
    if not enabled or not sys.stderr.isatty():
        return None
    total = _count_rows(path)
    return _Progress(total, sys.stderr) if total > PROGRESS_MIN_ROWS else None


class _Chunk:
    """Parsed input columns of up to :data:`CHUNK_ROWS` rows, plus which rows are bad."""

    def __init__(self, header: Sequence[str], rows: list[list[str]], first_row: int) -> None:
        self.n = len(rows)
        self.first_row = first_row
        self._problems: list[tuple[int, int, str]] = []  # row, order found, message
        self.bad = np.zeros(self.n, dtype=bool)
        index = {name: i for i, name in enumerate(header)}
        self.columns: dict[str, object] = {
            "sex": self._coded(rows, index.get("sex"), "sex", _SEX, np.nan),
            "measure": self._coded(rows, index.get("measure"), "measure", _MEASURE, ""),
            "oedema": self._coded(rows, index.get("oedema"), "oedema", _OEDEMA, "n"),
        }
        for name in _NUMERIC:
            self.columns[name] = self._numbers(rows, index.get(name), name)

    @property
    def problems(self) -> list[str]:
        """Messages in row order, and within a row in column-check order."""
        return [message for _, _, message in sorted(self._problems)]

    def _report(self, i: int, column: str, message: str, bad: bool) -> None:
        text = f"row {self.first_row + i}, column {column}: {message}"
        self._problems.append((i, len(self._problems), text))
        self.bad[i] |= bad

    def _coded(
        self,
        rows: list[list[str]],
        col: int | None,
        name: str,
        codes: dict[str, object],
        blank: object,
    ) -> np.ndarray[tuple[int], np.dtype[np.object_]]:
        out = np.full(self.n, blank, dtype=object)
        if col is None:
            return out
        for i, row in enumerate(rows):
            text = row[col].strip()
            value = codes.get(_canonical_code(text))
            if value is None:
                self._report(i, name, f"{text!r} is not {_ALLOWED[name]}", True)
            elif name == "sex" and not text:
                self._report(i, name, "empty, so no z-score can be computed", False)
            else:
                out[i] = value
        return out

    def _numbers(
        self, rows: list[list[str]], col: int | None, name: str
    ) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        out = np.full(self.n, np.nan)
        if col is None:
            return out
        bound = UPPER_BOUNDS.get(name)
        for i, row in enumerate(rows):
            text = row[col].strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                self._report(i, name, f"{text!r} is not a number", True)
            elif name == "age_days" and value < 0:
                self._report(i, name, f"{text!r} is negative", True)
            else:
                out[i] = value
                if bound is not None and value > bound:
                    self._report(i, name, f"{text!r} is above {bound:g}; scored as given", False)
        return out


def _texts(name: str, values: list[float]) -> list[str]:
    """Output cells of one column: empty when missing; z to 2 decimals; flags as 0/1.

    ``clenhei`` and ``cbmi`` are written as short decimals (float noise such as
    72.16000000000001 removed; BMI to 4 decimals, as WHO's reference output).
    """
    if name.startswith("z"):
        return ["" if v != v else f"{v + 0.0:.2f}" for v in values]  # + 0.0: no "-0.00"
    if name in ("clenhei", "cbmi"):
        digits = 8 if name == "clenhei" else 4
        return ["" if v != v else repr(round(v, digits)) for v in values]
    return ["" if v != v else str(int(v)) for v in values]


def _output_rows(
    chunk: _Chunk, raw_rows: list[list[str]], header: Sequence[str]
) -> Iterator[list[str]]:
    """Input cells, then the scores; a score column the input already had is overwritten."""
    scores = compute_batch(chunk.columns)
    texts = {name: _texts(name, scores[name].tolist()) for name in OUTPUT_COLUMNS}
    for i in np.flatnonzero(chunk.bad).tolist():
        for column in texts.values():
            column[i] = ""
    overwrite = [(header.index(name), texts[name]) for name in OUTPUT_COLUMNS if name in header]
    appended = [texts[name] for name in OUTPUT_COLUMNS if name not in header]
    tails: Iterable[tuple[str, ...]] = zip(*appended, strict=True) if appended else repeat(())
    for i, (row, tail) in enumerate(zip(raw_rows, tails, strict=False)):
        for position, column in overwrite:
            row[position] = column[i]
        yield [*row, *tail]


def _read_chunks(
    reader: Iterator[list[str]], width: int
) -> Iterator[tuple[list[list[str]], list[str]]]:
    """Rows in chunks, padded to the header's width; over-long rows are reported and cut."""
    rows: list[list[str]] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=1):
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            problems.append(f"row {number}: {len(row)} fields but the header has {width}")
        rows.append((row + [""] * width)[:width])
        if len(rows) == CHUNK_ROWS:
            yield rows, problems
            rows, problems = [], []
    if rows or problems:
        yield rows, problems


def score_csv(in_path: PathLike, out_path: PathLike, progress: bool = False) -> ScoreReport:
    """Read ``in_path``, write it to ``out_path`` with WHO z-scores and flags appended.

    :param progress: show a progress line on stderr for files over 10,000 rows, when stderr
        is a terminal.
    :raises CsvFormatError: the file has no header or no ``sex`` column.
    """
    meter = _progress(in_path, progress)
    problems: list[str] = []
    done = 0
    with open(in_path, encoding="utf-8-sig", newline="") as src:
        reader = csv.reader(src)
        header = next(reader, None)
        if header is None:
            raise CsvFormatError(f"{in_path}: empty file, no header")
        header = [name.strip() for name in header]
        if "sex" not in header:
            raise CsvFormatError(f"{in_path}: no 'sex' column")
        out_header = header + [name for name in OUTPUT_COLUMNS if name not in header]
        with open(out_path, "w", encoding="utf-8", newline="") as dst:
            writer = csv.writer(dst, lineterminator="\n")
            writer.writerow(out_header)
            for rows, row_problems in _read_chunks(reader, len(header)):
                chunk = _Chunk(header, rows, done + 1)
                problems += row_problems + chunk.problems
                writer.writerows(_output_rows(chunk, rows, header))
                done += chunk.n
                if meter:
                    meter.update(done)
    if meter:
        meter.close()
    return ScoreReport(rows=done, problems=problems)
