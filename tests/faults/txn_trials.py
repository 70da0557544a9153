"""The transaction fault trial: transactional producer processes SIGKILLed at random
moments (while sending, committing or aborting), restarted with the same
transactional id, round after round; then a read_committed reader must see every
transaction atomically: all of it or none, all of every acknowledged commit, none of
an acknowledged abort, no record twice; and a read_uncommitted reader everything
committed too. ``tools/fault_run.py --kind txn`` runs hundreds;
tests/faults/test_transaction_kills.py a few.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from streamkit.log.broker import open_log_broker
from streamkit.types import TopicPartition

from .trials import REPO, TrialResult, kill_when_ready

TOPIC = "t"
TXN_PRODUCER = Path(__file__).resolve().parent / "apps" / "txn_producer.py"

#: (transactional id, life, transaction number)
Txn = tuple[str, int, int]


def txn_trial(root: Path, seed: int, rounds: int | None = None) -> TrialResult:
    """See the module docstring. ``acknowledged`` counts the records of committed
    transactions whose commit returned."""
    rng = random.Random(seed)
    result = TrialResult("txn", seed)
    partitions = rng.choice((1, 3))
    segment_bytes = rng.choice((16, 256)) * 1024
    broker = open_log_broker(f"log://{root}")
    broker.create_topic(TOPIC, partitions, config={"segment.bytes": str(segment_bytes)})
    broker.close()
    outcomes: dict[Txn, str] = {}
    lives: Counter[str] = Counter()
    said = []
    for _ in range(rounds if rounds is not None else rng.randint(2, 4)):
        ids = ["a"] if rng.random() < 0.5 else ["a", "b"]
        said.append(_round(root, rng, ids, lives, outcomes, result))
    # what a restarted producer does first: init_transactions ends what was left
    broker = open_log_broker(f"log://{root}")
    for tid in ("a", "b"):
        broker.transactional_producer(tid).close()
    result.fault = (f"{partitions} partition(s), segment.bytes={segment_bytes}; "
                    + "; ".join(said))
    _judge(broker, partitions, outcomes, result)
    broker.close()
    return result


def _round(root: Path, rng: random.Random, ids: list[str], lives: Counter[str],
           outcomes: dict[Txn, str], result: TrialResult) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    try:
        for tid in ids:
            lives[tid] += 1
            argv = [sys.executable, str(TXN_PRODUCER), str(root), TOPIC, tid,
                    str(lives[tid]), str(rng.randrange(1 << 32))]
            procs.append((tid, lives[tid], subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)))
        kill_when_ready([p[2] for p in procs], rng, 0.4)
    finally:
        for _tid, _life, proc in procs:
            if proc.poll() is None:
                proc.kill()
    said = []
    for tid, life, proc in procs:
        out, err = proc.communicate(timeout=60)
        done = 0
        for line in out.decode().splitlines()[1:]:
            what, n = line.split()
            outcomes[(tid, life, int(n))] = what
            done += 1
        text = err.decode(errors="replace")
        if "Traceback" in text:
            result.broken("errors", [(tid, life)], f"producer {tid} life {life} "
                          f"raised: {text[-2000:]}")
        said.append(f"{tid}#{life} killed after {done} transactions")
    return ", ".join(said)


def _read(broker, partitions: int, isolation: str) -> list[bytes]:
    out = []
    for p in range(partitions):
        tp = TopicPartition(TOPIC, p)
        offset = broker.offsets(tp)[0]
        while batch := broker.fetch(tp, offset, 5000, isolation_level=isolation):
            out.extend(m.value for m in batch)
            offset = batch[-1].offset + 1
    return out


def _judge(broker, partitions: int, outcomes: dict[Txn, str],
           result: TrialResult) -> None:
    seen: dict[Txn, Counter[int]] = defaultdict(Counter)
    sizes: dict[Txn, int] = {}
    for value in _read(broker, partitions, "read_committed"):
        tid, life, n, i, count = value.decode().split("/")
        txn = (tid, int(life), int(n))
        seen[txn][int(i)] += 1
        sizes[txn] = int(count)
    result.acknowledged = sum(sizes.get(t, 0) for t, o in outcomes.items()
                              if o == "commit")
    for txn, what in outcomes.items():
        got = seen.get(txn, Counter())
        if what == "abort" and got:
            result.broken("changed", [txn], f"{txn}: {len(got)} records of an "
                          "acknowledged abort seen by read_committed")
        if what == "commit" and len(got) != sizes.get(txn, -1):
            result.broken("lost", [txn], f"{txn}: an acknowledged commit has "
                          f"{len(got)} of its {sizes.get(txn, '?')} records")
    for txn, got in seen.items():
        if len(got) != sizes[txn]:
            result.broken("lost", [txn], f"{txn}: {len(got)} of {sizes[txn]} records "
                          "visible (not atomic)")
        twice = [i for i, c in got.items() if c > 1]
        if twice:
            result.broken("duplicated", [txn], f"{txn}: records {twice[:5]} twice")
    everything = Counter(_read(broker, partitions, "read_uncommitted"))
    for txn, got in seen.items():
        tid, life, n = txn
        missing = [i for i in got if everything[
            f"{tid}/{life}/{n}/{i}/{sizes[txn]}".encode()] != 1]
        if missing:
            result.broken("misreported", [txn], f"{txn}: read_uncommitted does not "
                          f"hold records {missing[:5]} once")
