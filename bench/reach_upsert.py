"""The feed's one statement on a full-size central, as it was and as it is: report_reach's upsert.

``python -m bench.reach_upsert --data DIR`` (a folder ``bench.reports --data`` loaded: its
cluster is started, and stopped after) runs ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` of
:func:`contigo.reports.feed._add_in_one_statement`'s statement for batches of screening facts
of persons the table holds (new fact ids), in three cases: each fact in a month its person's
reach row counts already, each in a month it does not count yet, and (for comparison, the
reach rows inserted as in ``bench.reports``'s push) as if of persons the table does not hold.
Each case runs the
statement without the update's ``WHERE`` (as before issue 13's fourth pass) and with it, each
in a transaction rolled back, the two in alternate order from round to round. Nothing is kept.
"""

from __future__ import annotations

import argparse
import random
import secrets
from pathlib import Path
from typing import Any

import psycopg

from contigo.reports import feed
from tests.pgserver import postgres_cluster

NOW = feed._ONE_STATEMENT
WHERE = " WHERE (report_reach.months | excluded.months) <> report_reach.months"
BEFORE = NOW.replace(WHERE, "")
assert BEFORE != NOW, "the update's WHERE is not in the statement"
CASES = {
    "counted": "of a counted person in a month counted already",
    "new month": "of a counted person in a month not counted yet",
    "new person": "of a person not counted (a reach row inserted)",
}


def _facts(
    cur: psycopg.Cursor[Any], n: int, rng: random.Random, case: str, percent: float
) -> list[list[Any]]:
    """``n`` screening facts of persons with a reach row, new ids: in a month the row counts
    (``case`` "counted"), in one of its year it does not ("new month"), or as if of persons the
    table does not hold (new pseudonyms: "new person", the reach rows inserted)."""
    new_month = case == "new month"
    columns = ", ".join(f"f.{c}" for c in feed._VISIT_COLUMNS)
    person = feed._surrogate_sql("f.pseudonym")
    key = " AND ".join(f"r.{c} = f.{c}" for c in feed.REACH_KEY[1:-1])
    cur.execute("SELECT setseed(%s)", [rng.random()])
    cur.execute(
        f"SELECT {columns}, r.months FROM report_facts f TABLESAMPLE SYSTEM (%s) "
        f"JOIN report_reach r ON r.person = {person} AND {key} "
        "AND r.year = substr(f.month, 1, 4)::int "
        "WHERE f.kind = 'screen' AND (NOT %s OR r.months <> 4095) ORDER BY random() LIMIT %s",
        [percent, new_month, n],
    )
    out = []
    month = feed._VISIT_COLUMNS.index("month")
    for *row, months in cur.fetchall():
        row[0] = secrets.token_hex(24)
        if new_month:
            free = [m for m in range(1, 13) if not months >> (m - 1) & 1]
            row[month] = f"{row[month][:4]}-{rng.choice(free):02d}"
        if case == "new person":
            row[1] = secrets.token_hex(16)
        out.append(row)
    assert len(out) == n, len(out)
    return out


def _explain(cur: psycopg.Cursor[Any], text: str, rows: list[list[Any]]) -> dict[str, Any]:
    columns = [list(c) for c in zip(*rows, strict=True)]
    cur.execute("BEGIN")
    cur.execute(
        "EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + text,
        [["x" * 32] * len(rows), *columns, []],  # no person treated
    )
    found = cur.fetchone()
    cur.execute("ROLLBACK")
    assert found is not None
    plan: dict[str, Any] = found[0][0]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a bench.reports --data folder")
    parser.add_argument("--facts", type=int, default=400, help="facts per statement")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--percent", type=float, default=1.0, help="of the facts' pages sampled")
    args = parser.parse_args()
    rng = random.Random(13)
    with postgres_cluster(keep=args.data.resolve() / "pg") as url:
        central = url.rsplit("/", 1)[0] + "/central"  # the database bench.reports made
        dsn = central.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
            for case in ("counted", "new month", "new person"):
                print(f"{args.facts} facts, each {CASES[case]}:", flush=True)
                for r in range(args.rounds):
                    rows = _facts(cur, args.facts, rng, case, args.percent)
                    order = [("before", BEFORE), ("now", NOW)][:: -1 if r % 2 else 1]
                    for name, text in order:
                        plan = _explain(cur, text, rows)
                        top = plan["Plan"]
                        touched = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
                        print(f"  round {r} {name:6s} {plan['Execution Time']:7.1f} ms, "
                              f"{touched:,} buffers ({top.get('Shared Dirtied Blocks', 0):,} "
                              f"dirtied), WAL {top.get('WAL Records', 0):,} records "
                              f"({top.get('WAL FPI', 0):,} full pages, "
                              f"{top.get('WAL Bytes', 0) / 1e6:.2f} MB)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
