"""A stream-stream join (tests/e2e/apps/joining.py: ``left`` outer-joined with
``right`` within 10 s, grace 2 s, 4 partitions) in real worker processes: an
uninterrupted run gives every result the join's definition gives, a run stopped with
SIGTERM and restarted gives exactly those, and a run SIGKILLed again and again gives
each of them at least once and nothing else.

The inputs are fixed (seeded): left records at increasing times, keys drawn from a few
hundred, most with right records of the same key within 15 s of them (so some in the
window, some not), and right records of keys the left side never has; each topic a
little out of order, never by more than the grace, so nothing is late. Once the worker
has caught up, one record per partition on each side, far in the future and of a key
of its own, moves both stream times past every window: every record then has closed,
and the results are those of the definition, whatever order the worker read the two
topics in.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import streamkit

from .conftest import read_topic, wait_for

pytestmark = pytest.mark.slow
APP = "joining.py"
PARTITIONS = 4
WITHIN_MS = 10_000
#: one result: [key, left value or None, right value or None]
Result = tuple[str, str | None, str | None]
#: (timestamp ms, key, value)
Record = tuple[int, str, str]


def make_inputs(n_left: int = 1500, seed: int = 17) -> tuple[list[Record], list[Record]]:
    rng = random.Random(seed)
    lefts: list[Record] = []
    rights: list[tuple[int, str]] = []
    t = 1_600_000_000_000
    for i in range(n_left):
        t += rng.randrange(200, 1000)
        key = f"k{rng.randrange(400)}"
        lefts.append((t, key, f"L{i}"))
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            rights.append((t + rng.randrange(-15_000, 15_000), key))
    for j in range(n_left // 5):                  # keys the left side never has
        rights.append((1_600_000_000_000 + rng.randrange(t - 1_600_000_000_000),
                       f"u{j}"))
    return (_shuffled_within_grace(lefts, rng),
            _shuffled_within_grace([(ts, key, f"R{j}") for j, (ts, key)
                                    in enumerate(sorted(rights))], rng))


def _shuffled_within_grace(records: list[Record], rng: random.Random) -> list[Record]:
    """The records a little out of order: none more than 1.5 s (< the 2 s grace) behind
    an earlier one."""
    return sorted(records, key=lambda r: r[0] + rng.randrange(1500))


def expected_results(lefts: list[Record], rights: list[Record]) -> Counter[Result]:
    """The outer join's results by its definition: each pair of equal keys within
    10 s of each other, and each record that is in no pair, with None."""
    by_key: dict[str, list[Record]] = {}
    for record in rights:
        by_key.setdefault(record[1], []).append(record)
    results: Counter[Result] = Counter()
    paired: set[str] = set()
    for ts, key, value in lefts:
        matches = [r for r in by_key.get(key, []) if abs(r[0] - ts) <= WITHIN_MS]
        for _, _, other in matches:
            results[key, value, other] += 1
            paired.add(other)
        if not matches:
            results[key, value, None] += 1
    for _, key, value in rights:
        if value not in paired:
            results[key, None, value] += 1
    return results


def produce(datadir: Path, lefts: list[Record], rights: list[Record]) -> None:
    admin = streamkit.Admin(broker=f"log://{datadir}/log")
    for topic in ("left", "right"):
        admin.create_topic(topic, partitions=PARTITIONS, exist_ok=True)
    admin.close()
    producer = streamkit.Producer(broker=f"log://{datadir}/log", linger_ms=20)
    for topic, records in (("left", lefts), ("right", rights)):
        for ts, key, value in records:
            producer.send(topic, key=key.encode(), value=value.encode(), timestamp_ms=ts)
    producer.flush()
    producer.close()


def close_every_window(datadir: Path) -> None:
    """Once the worker has caught up: a record far in the future on each partition of
    each side, of keys nothing else has, so that both stream times pass every window."""
    wait_for(lambda: caught_up(datadir), timeout=40, what="worker caught up")
    producer = streamkit.Producer(broker=f"log://{datadir}/log")
    for topic in ("left", "right"):
        for p in range(PARTITIONS):
            producer.send(topic, key=f"end-{topic}".encode(), value=b"end", partition=p,
                          timestamp_ms=1_700_000_000_000)
    producer.flush()
    producer.close()


def caught_up(datadir: Path, topics: tuple[str, ...] = ("left", "right")) -> bool:
    """Whether the worker has committed every record of ``topics``."""
    with streamkit.Admin(broker=f"log://{datadir}/log") as admin:
        committed = {(o.topic, o.partition): o.committed or 0
                     for o in admin.group_offsets("joining")}
        ends = {(topic, p): end for topic in topics
                for p, end in enumerate(admin.describe_topic(topic).end_offsets)}
    return all(committed.get(tp, 0) == end for tp, end in ends.items())


def results(datadir: Path) -> list[Result]:
    return [tuple(json.loads(m.value)) for m in read_topic(datadir, "joined")]  # type: ignore[misc]


def wait_for_results(datadir: Path, done: Callable[[list[Result]], bool]) -> None:
    """Wait until ``done(results)`` holds, or until the results have stopped coming
    (for 3 s after the worker caught up), so that a failure shows what differs."""
    seen: list[int] = []

    def settled() -> bool:
        got = results(datadir)
        if done(got):
            return True
        seen.append(len(got))
        return len(seen) > 30 and seen[-31] == len(got) and caught_up(datadir)
    wait_for(settled, timeout=40, what="the results")


@pytest.fixture(scope="module")
def inputs() -> tuple[list[Record], list[Record], Counter[Result]]:
    lefts, rights = make_inputs()
    expected = expected_results(lefts, rights)
    # the inputs have what the test is about: pairs, and records of either side alone
    kinds = Counter("pair" if left and right else "left" if left else "right"
                    for _, left, right in expected)
    assert min(kinds.values()) > 200, kinds
    return lefts, rights, expected


def test_an_uninterrupted_run_gives_the_results_of_the_definition(workers, tmp_path,
                                                                   inputs):
    lefts, rights, expected = inputs
    produce(tmp_path, lefts, rights)
    worker = workers(APP)
    close_every_window(tmp_path)
    total = sum(expected.values())
    wait_for_results(tmp_path, lambda got: len(got) >= total)
    assert worker.terminate() == 0, worker.log()
    got = Counter(results(tmp_path))            # (and whatever came with the stop)
    assert got == expected


def test_sigterm_and_restart_give_exactly_the_results_of_an_uninterrupted_run(
        workers, tmp_path, inputs):
    lefts, rights, expected = inputs
    produce(tmp_path, lefts, rights)
    total = sum(expected.values())
    first = workers(APP, JOINING_SLEEP="0.002", JOINING_MAX_POLL="50")
    wait_for(lambda: len(results(tmp_path)) >= total // 3, what="a third of the results")
    assert first.terminate() == 0, first.log()
    assert len(results(tmp_path)) < total, "the stop should come midway: slow the agent"

    second = workers(APP)
    close_every_window(tmp_path)
    wait_for_results(tmp_path, lambda got: len(got) >= total)
    assert second.terminate() == 0, second.log()
    got = Counter(results(tmp_path))            # (and whatever came with the stop)
    assert got == expected                     # none lost, none twice


def test_sigkill_and_restart_lose_no_result_and_make_up_none(workers, tmp_path, inputs):
    # (the agent awaits between results: commits come while it holds the results of
    # one record, which a commit writes as if that record had not been read yet)
    lefts, rights, expected = inputs
    produce(tmp_path, lefts, rights)
    total = sum(expected.values())
    for quarter in (1, 2, 3):                  # killed three times, further each time
        worker = workers(APP, JOINING_SLEEP="0.001", JOINING_MAX_POLL="50")
        wait_for(lambda q=quarter: len(set(results(tmp_path))) >= total * q // 4,
                 what=f"{quarter}/4 of the results")
        worker.kill()
        assert len(set(results(tmp_path))) < total, "the kills should come midway"

    last = workers(APP)
    close_every_window(tmp_path)
    wait_for_results(tmp_path, lambda got: set(got) >= set(expected))
    assert last.terminate() == 0, last.log()
    got = Counter(results(tmp_path))
    assert set(got) == set(expected)           # each at least once, and nothing else


def test_a_sigkill_among_the_results_of_one_record_loses_none_of_them(workers, tmp_path):
    # 200 left records of their own keys, in partition 0; once the worker has them,
    # one right record 3 h later closes all 200 windows: one record, 200 results
    admin = streamkit.Admin(broker=f"log://{tmp_path}/log")
    for topic in ("left", "right"):
        admin.create_topic(topic, partitions=PARTITIONS)
    admin.close()
    producer = streamkit.Producer(broker=f"log://{tmp_path}/log")
    for i in range(200):
        producer.send("left", key=f"a{i}".encode(), value=f"L{i}".encode(), partition=0,
                      timestamp_ms=1_600_000_000_000 + i * 1000)
    producer.flush()
    first = workers(APP, JOINING_SLEEP="0.01")          # 2 s for the 200 results
    wait_for(lambda: caught_up(tmp_path, ("left",)), what="left records read")
    producer.send("right", key=b"z", value=b"Z", partition=0,
                  timestamp_ms=1_600_010_800_000)
    producer.close()
    wait_for(lambda: len(results(tmp_path)) >= 50, what="the first results")
    first.kill()           # commits came every 0.2 s while the agent went through them

    second = workers(APP)
    expected = {(f"a{i}", f"L{i}", None) for i in range(200)}
    wait_for_results(tmp_path, lambda got: set(got) >= expected)
    assert second.terminate() == 0, second.log()
    assert set(results(tmp_path)) == expected
