"""Power-cut soak: ``python -m bench.soak [--rounds 100]``.

The power-cut test (``tests/test_power_cut.py``) run for many rounds: the real ``contigo serve``
over a real instance, two threads saving visits through the JSON API, SIGKILL a random moment
after each round's first acknowledged visit, ``PRAGMA integrity_check`` and
``foreign_key_check`` on the file after every kill, and at the end every acknowledged save
looked up. Prints saves acknowledged, saves lost (target 0) and integrity checks passed.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from tests.test_power_cut import Acknowledged, kill_round, lost_saves, new_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    acked = Acknowledged()
    checks = 0
    failures: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="contigo-soak-") as tmp:
        server = new_server(Path(tmp))
        try:
            for round_no in range(1, args.rounds + 1):
                try:
                    saves = kill_round(server, acked, rng)
                    checks += 1  # kill_round asserts integrity_check and foreign_key_check
                except AssertionError as exc:
                    saves = 0
                    failures.append(
                        f"round {round_no}: {(str(exc) or repr(exc)).splitlines()[0][:300]}"
                    )
                    acked.refused.clear()
                    errors = [
                        line
                        for line in server.log.read_text(errors="replace").splitlines()
                        if "Error" in line or "Exception" in line
                    ]
                    failures += [f"  server log: {line[:300]}" for line in errors[-3:]]
                    if server.process is not None:
                        server.kill()
                if round_no % 10 == 0 or round_no == args.rounds:
                    print(f"round {round_no}/{args.rounds}: {saves} saves this round, "
                          f"{len(acked.encounters)} visits and {len(acked.persons)} persons "
                          f"acknowledged so far", flush=True)  # fmt: skip
            lost_persons, lost_encounters = lost_saves(server, acked)
        finally:
            if server.process is not None:
                server.kill()
    acknowledged = len(acked.encounters) + len(acked.persons)
    lost = len(lost_persons) + len(lost_encounters)
    elapsed = time.monotonic() - started
    print(f"seed {seed}, {args.rounds} rounds in {elapsed:.0f} s")
    print(f"saves acknowledged: {acknowledged} ({len(acked.encounters)} visits, "
          f"{len(acked.persons)} persons)")  # fmt: skip
    print(f"saves lost: {lost} (target 0)")
    print(f"integrity checks passed: {checks}/{args.rounds}")
    for failure in failures:
        print(f"  failed {failure}")


if __name__ == "__main__":
    main()
