"""The feed's one statement on a full-size central, as it was and as it is: report_reach's upsert.

``python -m bench.reach_upsert --data DIR`` (a folder ``bench.reports --data`` loaded: its
cluster is started, and stopped after) runs ``EXPLAIN (ANALYZE, BUFFERS, WAL)`` of
:func:`contigo.reports.feed._add_in_one_statement`'s statement for batches of reach rows as a
push folds them, in three cases: each row's months counted already, each with a month not counted
yet, and (the reach rows inserted, as in ``bench.reports``'s push) of persons the table does not
hold. Each case runs the statement without the update's ``WHERE`` (as before issue 13's fourth
pass) and with it, each in a transaction rolled back, the two in alternate order from round to
round. Nothing is kept.
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
    "counted": "of a counted person, its months counted already",
    "new month": "of a counted person, with a month not counted yet",
    "new person": "of a person not counted (a reach row inserted)",
}


def _rows(
    cur: psycopg.Cursor[Any], n: int, rng: random.Random, case: str, percent: float
) -> list[tuple[Any, ...]]:
    """``n`` reach rows as a push sends them (:data:`~contigo.reports.feed._SENT_COLUMNS`),
    sampled from the table: their months counted already (``case`` "counted"), with one month
    of the year not counted yet ("new month"), or as if of persons the table does not hold (new
    surrogates: "new person", the reach rows inserted)."""
    columns = ", ".join(feed._REACH_COLUMNS)
    cur.execute("SELECT setseed(%s)", [rng.random()])
    cur.execute(
        f"SELECT {columns} FROM report_reach TABLESAMPLE SYSTEM (%s) "
        "WHERE kind <> 'episode' AND months <> 4095 ORDER BY random() LIMIT %s",
        [percent, n],
    )
    out = []
    months = feed._REACH_COLUMNS.index("months")
    for row in cur.fetchall():
        sent = [secrets.token_hex(16), *row]  # a person id no episode names
        if case == "new month":
            free = [m for m in range(12) if not row[months] >> m & 1]
            sent[1 + months] = 1 << rng.choice(free)
        if case == "new person":
            sent[1] = sent[-2] = rng.getrandbits(63)
        out.append(tuple(sent))
    assert len(out) == n, len(out)
    return out


def _explain(cur: psycopg.Cursor[Any], text: str, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    split, params = feed._statement(sorted({r[0] for r in rows}), rows)
    assert split == NOW
    cur.execute("BEGIN")
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, WAL, FORMAT JSON) " + text, params)
    found = cur.fetchone()
    cur.execute("ROLLBACK")
    assert found is not None
    plan: dict[str, Any] = found[0][0]
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a bench.reports --data folder")
    parser.add_argument("--rows", type=int, default=100, help="reach rows per statement")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--percent", type=float, default=1.0, help="of the table's pages sampled")
    args = parser.parse_args()
    rng = random.Random(13)
    with postgres_cluster(keep=args.data.resolve() / "pg") as url:
        central = url.rsplit("/", 1)[0] + "/central"  # the database bench.reports made
        dsn = central.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
            for case in ("counted", "new month", "new person"):
                print(f"{args.rows} reach rows, each {CASES[case]}:", flush=True)
                for r in range(args.rounds):
                    rows = _rows(cur, args.rows, rng, case, args.percent)
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
