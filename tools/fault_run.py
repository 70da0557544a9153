#!/usr/bin/env python
"""Run many fault trials against the embedded log and count the promises it broke.

    python tools/fault_run.py --trials 300 --seed 0 --kind all      # bitflip, kill, txn

Trial ``i`` of a kind runs with seed ``--seed + i`` (the trials themselves are in
tests/faults/trials.py, shared with the fault tests), each in a fresh temporary
directory. Prints, per kind and in total: trials, acknowledged records, lost,
duplicated, changed, reused offsets, misreported damage, errors, flips detected and
harmless, torn writes cut; then every failing trial with its seed. Exits 1 if any
trial broke a promise (lost and duplicated must be 0, and so must the others).
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.trials import TRIALS, VIOLATIONS, TrialResult, time_limit  # noqa: E402
from tests.faults.txn_trials import txn_trial  # noqa: E402

#: every kind: the log's own trials, and transactions killed mid-way
KINDS = {**TRIALS, "txn": txn_trial}

COLUMNS = ("trials", "acknowledged", *VIOLATIONS, "detected", "harmless", "torn")
#: A trial running longer than this is a hang in the log.
TRIAL_SECONDS = 300.0


def run_trial(kind: str, seed: int) -> TrialResult:
    """One trial in a fresh directory; an exception or a hang is counted as an error."""
    with tempfile.TemporaryDirectory(prefix=f"fault-{kind}-") as tmp:
        try:
            with time_limit(TRIAL_SECONDS, f"{kind} trial seed={seed}"):
                return KINDS[kind](Path(tmp) / "log", seed)
        except Exception:
            result = TrialResult(kind, seed, fault="raised")
            result.broken("errors", ["raised"], traceback.format_exc())
            return result


def totals(results: list[TrialResult]) -> dict[str, int]:
    row = {"trials": len(results)}
    for column in COLUMNS[1:]:
        row[column] = sum(getattr(r, column) for r in results)
    return row


def print_table(rows: dict[str, dict[str, int]]) -> None:
    widths = {c: max(len(c), 8) for c in COLUMNS}
    print(f"{'kind':<8} " + " ".join(f"{c:>{widths[c]}}" for c in COLUMNS))
    for name, row in rows.items():
        print(f"{name:<8} " + " ".join(f"{row[c]:>{widths[c]}}" for c in COLUMNS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per kind")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first trial")
    parser.add_argument("--kind", choices=[*KINDS, "all"], default="all")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print one line per trial")
    args = parser.parse_args(argv)
    # the log's warnings (cut torn writes, skipped cleanups) are counted, not printed
    logging.getLogger("streamkit").addHandler(logging.NullHandler())
    kinds = list(KINDS) if args.kind == "all" else [args.kind]
    results: dict[str, list[TrialResult]] = {}
    started = time.monotonic()
    for kind in kinds:
        results[kind] = []
        for seed in range(args.seed, args.seed + args.trials):
            result = run_trial(kind, seed)
            results[kind].append(result)
            if args.verbose:
                print(f"{'ok  ' if result.ok else 'FAIL'} {kind} seed={seed}: "
                      f"{result.fault}", flush=True)
    rows = {kind: totals(rs) for kind, rs in results.items()}
    rows["total"] = totals([r for rs in results.values() for r in rs])
    print_table(rows)
    failed = [r for rs in results.values() for r in rs if not r.ok]
    for result in failed:
        print()
        print(result.report())
        print(f"  rerun: python tools/fault_run.py --kind {result.kind} "
              f"--seed {result.seed} --trials 1")
    print(f"\n{len(failed)} failing trial(s); {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
