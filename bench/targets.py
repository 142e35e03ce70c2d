"""One table of figures against their targets, printed the same way by every benchmark."""

from __future__ import annotations

from collections.abc import Iterable

Row = tuple[str, str, str, bool]
"""A measure, its figure, its target and whether the figure meets it."""


def print_targets(rows: Iterable[Row]) -> None:
    """Print ``rows`` as a table and how many targets were met."""
    rows = list(rows)
    print(f"\n{'measure':<46}{'figure':>14}   {'target':<16}ok")
    for label, value, target, ok in rows:
        print(f"{label:<46}{value:>14}   {target:<16}{'yes' if ok else 'NO'}")
    met = sum(1 for *_, ok in rows if ok)
    print(f"{met} of {len(rows)} targets met")
