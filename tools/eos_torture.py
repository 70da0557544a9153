#!/usr/bin/env python
"""The exactly-once torture run of issue 19: a real worker SIGKILLed again and again.

    python tools/eos_torture.py --kills 60 --events 20000 --seed 1
    python tools/eos_torture.py --kills 60 --events 20000 --guarantee at_least_once
    python tools/eos_torture.py --kills 20 --events 5000 --broker apache

A ``python eos_counting.py worker`` process (tests/e2e/apps) counts events per key into
a table and forwards each event to an output topic, on ``log://``, with a 50 ms commit
interval and a random pause after each commit marker (so kills land inside commits
too). It is SIGKILLed ``--kills`` times at random moments (a quarter of them during
start-up) and restarted each time with the same data directory, while events keep
coming; a last worker finishes and stops gracefully. Then, read_committed: the output
topic must hold each event once and the table (its changelog, and the last worker's own
store) must equal the true counts. Prints the figures; exits 1 if exactly_once was not
exact, or if at_least_once showed no duplicate (the run could not tell them apart).

``--await-in-agent`` makes the agent await inside each event (a sleep) instead of
working without awaiting: see the report of this run for what that shows.

``--broker apache`` runs it on Apache Kafka 4.4 (one KRaft node started for the run, as
the tests do: tests/kafka_server), ``--broker kafka://HOST:PORT`` on a running Kafka
(its topics eos-in, eos-out and the app's must not exist yet). A killed worker's
partitions move once its session (3 s) expires, so each life starts slower there.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import torture


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60, help="SIGKILLs (default 60)")
    parser.add_argument("--events", type=int, default=20_000,
                        help="input events (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--guarantee", choices=["exactly_once", "at_least_once"],
                        default="exactly_once")
    parser.add_argument("--commit-interval", type=float, default=0.05,
                        help="the app's commit_interval in seconds (default 0.05)")
    parser.add_argument("--await-in-agent", action="store_true",
                        help="the agent awaits a 1 ms sleep inside each event")
    parser.add_argument("--keep", action="store_true",
                        help="keep the data directory (printed) for a look")
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per kill")
    parser.add_argument("--broker", default=None,
                        help="apache, or kafka://HOST:PORT (default: the embedded log)")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.events < 1:
        parser.error("--kills and --events must be at least 1")
    logging.getLogger("streamkit").addHandler(logging.NullHandler())
    work = Path(tempfile.mkdtemp(prefix="eos-torture-"))
    say = None if args.quiet else (lambda line: print(line, flush=True))
    kafka = None
    if args.broker == "apache":
        from tests.kafka_server.broker import ApacheKafka, missing
        if (reason := missing()) is not None:
            parser.error(reason)
        (work / "apache-kafka").mkdir()
        kafka = ApacheKafka(work / "apache-kafka")
        print(f"Apache Kafka started in {kafka.started_in:.1f} s at {kafka.url}")
    try:
        result = torture.run(work, kills=args.kills, events=args.events, seed=args.seed,
                             guarantee=args.guarantee, commit_interval=args.commit_interval,
                             event_work=0.0 if args.await_in_agent else 0.0002,
                             event_sleep=0.001 if args.await_in_agent else 0.0, say=say,
                             broker=kafka.url if kafka is not None else args.broker)
    finally:
        if kafka is not None:
            kafka.stop()
    print(f"kills:        {result.kills} (during start-up {result.startup_kills}, "
          f"inside a commit {result.commit_kills}, with a transaction open "
          f"{result.open_kills})")
    print(f"events:       {result.events}")
    print(f"outputs:      {result.outputs} read_committed (copies per event: "
          f"{result.copies})")
    print(f"duplicates:   {result.duplicates}")
    print(f"missing:      {result.missing}")
    print(f"count errors: {result.count_errors} (changelog, read_committed), "
          f"{result.report_errors} (the last worker's table)")
    print(f"last worker:  exit {result.last_exit}")
    print(f"wall time:    {result.wall:.1f} s")
    if args.keep:
        print(f"data:         {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.guarantee == "exactly_once":
        ok = result.exact
        print("EXACT" if ok else "NOT EXACT")
    else:
        ok = result.duplicates > 0 and result.missing == 0
        print("duplicates seen, none lost (at_least_once, as it should be)" if ok
              else "at_least_once showed no duplicate: the run cannot tell")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
