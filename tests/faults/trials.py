"""The fault trials, written once: the fault tests run a few of them
(test_bit_flips.py, test_producer_kills.py) and ``tools/fault_run.py`` runs hundreds.

A trial builds a real log on disk, breaks it the way a disk or a crash does (one bit
flipped in a segment file; producer processes SIGKILLed mid-stream), reads everything
back with fresh brokers, and counts what the log promised and did not keep: records
lost or changed, offsets returned twice or handed out again. Each trial is driven by
one seed, so a failing trial is reproduced by running its seed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from streamkit.errors import CorruptRecord
from streamkit.log.repair import check_partition, repair_partition
from streamkit.log.storage import FileStorage
from streamkit.transport import Broker, connect
from streamkit.types import OutgoingRecord, TopicPartition

from tests.pipes import readable
from .logfiles import HEADER_SIZE, batches, field_at, flip, segments

TOPIC = "t"
REPO = Path(__file__).resolve().parents[2]
PRODUCER_APP = Path(__file__).resolve().parent / "apps" / "producer.py"
#: Counters of broken promises: a trial that counts any of them failed.
VIOLATIONS = ("lost", "duplicated", "changed", "reused", "misreported", "errors")


@dataclass
class TrialResult:
    """What one trial saw. ``detected``/``harmless`` classify a bit flip; ``torn``
    counts interrupted writes cut with a warning; the ``VIOLATIONS`` count broken
    promises, each explained in ``problems``."""

    kind: str
    seed: int
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    changed: int = 0
    reused: int = 0
    misreported: int = 0
    errors: int = 0
    detected: int = 0
    harmless: int = 0
    torn: int = 0
    fault: str = ""
    problems: list[str] = field(default_factory=list)
    counted: dict[str, set[Hashable]] = field(default_factory=dict, repr=False)

    def broken(self, counter: str, where: Iterable[Hashable], why: str) -> None:
        """Count a broken promise of kind ``counter`` at each of ``where`` (offsets,
        reads), each once per trial however many passes see it, and say why."""
        seen = self.counted.setdefault(counter, set())
        fresh = set(where) - seen
        seen |= fresh
        setattr(self, counter, getattr(self, counter) + len(fresh))
        self.problems.append(why)

    @property
    def ok(self) -> bool:
        return not self.problems and not any(getattr(self, v) for v in VIOLATIONS)

    def report(self) -> str:
        """The trial in a few lines: its seed, its fault, what went wrong."""
        lines = [f"{self.kind} trial seed={self.seed}: {self.fault}"]
        lines += [f"  - {p}" for p in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"  - ... and {len(self.problems) - 20} more")
        return "\n".join(lines)


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError if the block runs longer than ``seconds``: a hang in the log
    fails the trial instead of the whole run (main thread only: SIGALRM)."""
    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"{what} still running after {seconds:.0f} s (a hang)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def spans(offsets: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"`` (a short list of offsets for a message)."""
    out: list[str] = []
    run: list[int] = []
    for o in sorted(offsets):
        if run and o == run[-1] + 1:
            run[-1] = o
            continue
        if run:
            out.append(f"{run[0]}-{run[1]}" if run[1] != run[0] else str(run[0]))
        run = [o, o]
    if run:
        out.append(f"{run[0]}-{run[1]}" if run[1] != run[0] else str(run[0]))
    return ", ".join(out[:12]) + (", ..." if len(out) > 12 else "")


# -- reading back -------------------------------------------------------------------

@dataclass
class ReadBack:
    """What reading one partition from offset 0 to its end returned.

    ``records``: offset -> value, each offset once; ``detections``: read offset ->
    the offset a CorruptRecord named, for every read that raised at or after the
    damage it reported (the offsets a user was told about); ``raised``: how many reads
    raised CorruptRecord at all."""

    records: dict[int, bytes | None] = field(default_factory=dict)
    detections: dict[int, int] = field(default_factory=dict)
    raised: int = 0


def read_back(broker: Broker, tp: TopicPartition, end: int, rng: random.Random,
              result: TrialResult) -> ReadBack:
    """Read ``tp`` from offset 0 up to ``end`` as a user would, in windows of random
    size. A read that raises CorruptRecord at offset ``o`` is noted and the next starts
    at ``o + 1``: every offset is tried at most once, so this ends after at most
    ``end`` reads however the log is damaged."""
    back = ReadBack()
    withheld: dict[int, CorruptRecord] = {}
    last = -1
    offset = 0
    while offset < end:
        try:
            messages = broker.fetch(tp, offset, max_records=rng.choice((1, 7, 100, 1000)))
        except CorruptRecord as exc:
            back.raised += 1
            if says_where(exc, tp, result) and exc.offset <= offset:
                back.detections[offset] = exc.offset
            else:
                withheld[offset] = exc
            offset += 1
            continue
        if not messages:
            result.problems.append(f"{tp.topic}[{tp.partition}]: a read at offset "
                                   f"{offset} returned nothing, before the end {end}")
            offset += 1
            continue
        for m in messages:
            if m.offset <= last or m.offset < offset:
                result.broken("duplicated", [(tp.partition, m.offset)], (
                    f"{tp}: offset {m.offset} was returned after offset {last}, by a "
                    f"read from offset {offset}"))
                continue
            back.records[m.offset] = m.value
            last = m.offset
        offset = max(last, offset) + 1         # forward even if all came back twice
    if withheld:
        named = sorted({exc.offset for exc in withheld.values()})
        result.broken("misreported", [(tp.partition, o) for o in withheld], (
            f"reads from offsets {spans(withheld)} raised CorruptRecord naming a later "
            f"offset ({spans(named)}) as the first one that cannot be read: the records "
            f"before the damage were withheld; first: {next(iter(withheld.values()))}"))
    return back


def says_where(exc: CorruptRecord, tp: TopicPartition, result: TrialResult) -> bool:
    """True if ``exc`` names the partition it was raised for and how to repair it."""
    if (exc.topic, exc.partition) == (tp.topic, tp.partition) and \
            "streamkit log repair" in str(exc):
        return True
    result.broken("misreported", [str(exc)], f"a CorruptRecord for {tp} that does not "
                  f"say where or how to repair: {exc}")
    return False


def _short(value: bytes | None) -> str:
    return repr(value if value is None or len(value) <= 40 else value[:40] + b"...")


def judge(acked: dict[int, bytes | None], back: ReadBack, result: TrialResult,
          where: str = "") -> None:
    """Every record read back is one acknowledged at that offset with that value; every
    acknowledged record not read back was reported by a CorruptRecord."""
    for offset, value in back.records.items():
        if offset not in acked:
            result.broken("changed", [offset], f"{where}offset {offset} was returned but "
                          "never acknowledged")
        elif value != acked[offset]:
            result.broken("changed", [offset], (
                f"{where}offset {offset} was returned with value {_short(value)}, "
                f"acknowledged with {_short(acked[offset])}"))
    missing = [o for o in acked if o not in back.records and o not in back.detections]
    if missing:
        result.broken("lost", missing, f"{where}acknowledged offsets {spans(missing)} "
                      "were neither returned nor reported by a CorruptRecord")


# -- bit flips -------------------------------------------------------------------

#: The value of the record appended after the flip.
AFTER_FLIP = b"appended after the flip"
#: Where a flip lands: anywhere in the file (twice as likely), or in one part of a batch.
ZONES = ("anywhere", "anywhere", "header", "crc", "first batch", "last batch")


def bitflip_trial(root: Path, seed: int) -> TrialResult:
    """Fill a partition of several segments (acks 1 or all), flip one bit in one
    segment file, read everything back, append once more, read again."""
    rng = random.Random(seed)
    result = TrialResult("bitflip", seed)
    acks = rng.choice((1, "all"))
    acked = _fill(root, rng, acks, result)
    result.acknowledged = len(acked)
    end = max(acked) + 1
    result.fault = f"acks={acks}, {len(acked)} records; " + _flip_random_bit(root, rng)
    files = {path: path.read_bytes() for path in segments(root, TOPIC)}
    first = _read_and_judge(root, acked, end, rng, result, "first read: ")
    result.detected = int(first.raised > 0)
    result.harmless = 1 - result.detected
    appended = _append_after_flip(root, acks, end, result)
    if appended is not None:
        acked[appended] = AFTER_FLIP
        end = appended + 1
    second = _read_and_judge(root, acked, end, rng, result, "read after the append: ")
    gone = [o for o, v in first.records.items()
            if o not in second.records or second.records[o] != v]
    if gone:
        result.broken("lost", gone, f"offsets {spans(gone)} were readable before "
                      "the append and not after it")
    for path, data in files.items():
        if not path.exists() or not path.read_bytes().startswith(data):
            result.broken("errors", [path.name], f"the append truncated or rewrote "
                          f"{path.name}")
    _repair_and_judge(root, acks, acked, end, second, result)
    return result


def _repair_and_judge(root: Path, acks: int | str, acked: dict[int, bytes | None],
                      end: int, before: ReadBack, result: TrialResult) -> None:
    """``streamkit log repair``'s work, then: no damage is left, every read succeeds,
    what was readable still is, every acknowledged record is readable or inside a
    range the quarantine describes, and the next append gets a new offset."""
    storage = FileStorage(root)
    repair_partition(storage, TOPIC, 0)
    left = [d for d in check_partition(storage, TOPIC, 0).damage if not d.torn]
    if left:
        result.broken("errors", [str(d) for d in left], f"damage left after repair: {left}")
    moved: set[int] = set()
    for described in (root / "__quarantine" / TOPIC / "0").glob("*.json"):
        item = json.loads(described.read_text())
        last = item["last_offset"] if item["last_offset"] is not None else end
        moved.update(range(item["first_offset"], last + 1))
    broker = connect(f"log://{root}")
    try:
        records: dict[int, bytes | None] = {}
        offset = 0
        while offset < end:
            batch = broker.fetch(TopicPartition(TOPIC, 0), offset, 1000)
            if not batch:
                break
            records.update((m.offset, m.value) for m in batch)
            offset = batch[-1].offset + 1
        appended = broker.produce(TOPIC, [OutgoingRecord(None, AFTER_FLIP, None, None, 0)],
                                  acks=acks)[0].offset
    except CorruptRecord as exc:
        result.broken("errors", [str(exc)], f"after repair: {exc}")
        return
    finally:
        broker.close()
    gone = [o for o, v in before.records.items() if records.get(o, v) != v or
            o not in records]
    if gone:
        result.broken("lost", gone, f"offsets {spans(gone)} were readable before the "
                      "repair and not after it")
    missing = [o for o in acked if o not in records and o not in moved]
    if missing:
        result.broken("lost", missing, f"after repair, acknowledged offsets "
                      f"{spans(missing)} are neither readable nor in the quarantine")
    if appended < end:
        result.broken("reused", [appended], f"the append after the repair got offset "
                      f"{appended}, below the end offset {end}")


def _fill(root: Path, rng: random.Random, acks: int | str,
          result: TrialResult) -> dict[int, bytes | None]:
    """Produce records in batches of random sizes into a topic with small segments,
    until it holds a few segments' worth; return offset -> value as acknowledged."""
    segment_bytes = rng.choice((16, 24, 32, 48, 64)) * 1024
    target = segment_bytes * rng.uniform(3.0, 6.0)
    broker = connect(f"log://{root}")
    broker.create_topic(TOPIC, partitions=1, config={"segment.bytes": str(segment_bytes)})
    acked: dict[int, bytes | None] = {}
    written = 0
    while written < target:
        count = rng.choice((1, rng.randint(1, 20), rng.randint(1, 150)))
        values = [b"%d:" % (len(acked) + i) + rng.randbytes(rng.randint(0, 300))
                  for i in range(count)]
        metadata = broker.produce(TOPIC, [OutgoingRecord(None, v, None, None, 0)
                                          for v in values], acks=acks)
        for meta, value in zip(metadata, values, strict=True):
            if meta.offset in acked:
                result.broken("reused", [meta.offset], f"offset {meta.offset} "
                              "acknowledged twice")
            acked[meta.offset] = value
        written += sum(len(v) + 20 for v in values) + HEADER_SIZE
    broker.close()
    return acked


def _flip_random_bit(root: Path, rng: random.Random) -> str:
    """Flip one bit of one segment file, chosen at random (see ``ZONES``); say where."""
    files = segments(root, TOPIC)
    index = rng.choice([i for i, path in enumerate(files) if path.stat().st_size])
    path = files[index]
    found = batches(path)
    zone = rng.choice(ZONES)
    if zone == "anywhere":
        pos = rng.randrange(path.stat().st_size)
    else:
        batch = found[0] if zone == "first batch" else \
            found[-1] if zone == "last batch" else rng.choice(found)
        inside = rng.randrange(4, 8) if zone == "crc" else \
            rng.randrange(HEADER_SIZE) if zone == "header" else rng.randrange(batch.size)
        pos = batch.pos + inside
    bit = rng.randrange(8)
    flip(path, pos, 1 << bit)
    batch = next(b for b in found if b.pos <= pos < b.pos + b.size)
    kind = "active" if index == len(files) - 1 else "closed"
    return (f"{zone}: bit {bit} of byte {pos} of the {kind} segment {path.name} "
            f"({len(files)} segments), in the {field_at(pos - batch.pos)} of the batch "
            f"of offsets {batch.first}-{batch.last}")


def _read_and_judge(root: Path, acked: dict[int, bytes | None], end: int,
                    rng: random.Random, result: TrialResult, where: str) -> ReadBack:
    """Read the partition back with a fresh broker and judge it against ``acked``."""
    broker = connect(f"log://{root}")
    try:
        back = read_back(broker, TopicPartition(TOPIC, 0), end, rng, result)
    finally:
        broker.close()
    judge(acked, back, result, where)
    return back


def _append_after_flip(root: Path, acks: int | str, end: int,
                       result: TrialResult) -> int | None:
    """Append one record with a fresh broker: the offset it got (never one below
    ``end``), or None if the log refused it as corrupt."""
    broker = connect(f"log://{root}")
    try:
        offset = broker.produce(TOPIC, [OutgoingRecord(None, AFTER_FLIP, None, None, 0)],
                                acks=acks)[0].offset
    except CorruptRecord as exc:
        result.fault += f"; the append was refused at offset {exc.offset}"
        if says_where(exc, TopicPartition(TOPIC, 0), result) and exc.offset > end:
            result.broken("misreported", ["append"], f"the refused append names offset "
                          f"{exc.offset}, after the end offset {end}: {exc}")
        return None
    finally:
        broker.close()
    result.fault += f"; appended at offset {offset}"
    if offset < end:
        result.broken("reused", [offset], f"the append after the flip got offset "
                      f"{offset}, below the end offset {end} before it")
    return offset


# -- producer kills ---------------------------------------------------------------

def record_value(tag: str, seq: int, size: int) -> bytes:
    """The value producer ``tag`` sends as its record ``seq``: names both and its
    size, then ``size`` bytes derived from all three, so a reader can tell who wrote
    any value it gets and that it came through whole."""
    head = f"{tag}:{seq}:{size}:".encode()
    pad = hashlib.blake2b(head, digest_size=64).digest()
    return head + (pad * (size // 64 + 1))[:size]


def written_by(value: bytes | None) -> tuple[str, int] | None:
    """(tag, seq) of a value ``record_value`` made, or None if no producer sent it."""
    try:
        tag, seq, size, _ = value.split(b":", 3)          # type: ignore[union-attr]
        found = (tag.decode(), int(seq))
        made = record_value(*found, int(size))
    except (AttributeError, ValueError, UnicodeDecodeError):
        return None
    return found if made == value else None


def kill_trial(root: Path, seed: int, acks: int | str | None = None,
               rounds: int | None = None) -> TrialResult:
    """Producer processes append to one topic and are SIGKILLed at random moments,
    round after round, sometimes two at once (acks 1 or all, or ``acks``). Then every
    acknowledged record must be readable at its offset with its value, each offset
    once, none missing; and the next append cuts a torn tail, with a warning."""
    rng = random.Random(seed)
    result = TrialResult("kill", seed)
    partitions = rng.choice((1, 2))
    segment_bytes = rng.choice((64, 256, 1024)) * 1024
    broker = connect(f"log://{root}")
    broker.create_topic(TOPIC, partitions, config={"segment.bytes": str(segment_bytes)})
    broker.close()
    acked: dict[tuple[int, int], bytes] = {}
    rounds_seen = []
    for r in range(rounds if rounds is not None else rng.randint(2, 4)):
        tags = [f"{seed}.{r}.{i}" for i in range(2 if rng.random() < 0.35 else 1)]
        rounds_seen.append(_kill_round(root, rng, acks, tags, acked, result))
    result.acknowledged = len(acked)
    result.fault = (f"{partitions} partition(s), segment.bytes={segment_bytes}; "
                    + "; ".join(rounds_seen))
    _check_partitions(root, partitions, acked, rng, result, "after the kills: ")
    _append_after_kills(root, partitions, acked, result)
    _check_partitions(root, partitions, acked, rng, result, "after one more append: ")
    return result


def _kill_round(root: Path, rng: random.Random, acks: int | str | None,
                tags: list[str], acked: dict[tuple[int, int], bytes],
                result: TrialResult) -> str:
    """Start one producer per tag, SIGKILL each after a random delay once it is
    appending, and collect what each acknowledged; describe the round."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = []
    try:
        for tag in tags:
            ack = acks if acks is not None else rng.choice((1, "all"))
            argv = [sys.executable, str(PRODUCER_APP), str(root), TOPIC, str(ack),
                    str(rng.randrange(1 << 32)), tag]
            procs.append((tag, ack, subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)))
        kill_when_ready([p[2] for p in procs], rng, 0.15)
    finally:
        for _tag, _ack, proc in procs:
            if proc.poll() is None:
                proc.kill()
    said = []
    for tag, ack, proc in procs:
        out, err = proc.communicate(timeout=60)
        count = _collect_acks(tag, out, acked, result)
        _check_producer_exit(tag, proc.returncode, err.decode(errors="replace"), result)
        said.append(f"producer {tag} (acks={ack}) killed after {count} acknowledged")
    return ", ".join(said)


def kill_when_ready(procs: list[subprocess.Popen], rng: random.Random,
                    latest: float) -> None:
    """Wait for each process's ``ready`` line, then SIGKILL each at a random moment
    up to ``latest`` seconds later."""
    for proc in procs:
        _wait_ready(proc)
    start = time.monotonic()
    for delay, proc in sorted(((rng.uniform(0.0, latest), p) for p in procs),
                              key=lambda pair: pair[0]):
        time.sleep(max(0.0, start + delay - time.monotonic()))
        proc.send_signal(signal.SIGKILL)


def _wait_ready(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait for the producer's ``ready`` line, reading the pipe's bytes one at a time
    (no buffered reader may keep the ack lines that follow it from ``communicate``)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        if not readable(fd, deadline - time.monotonic()):
            raise TimeoutError(f"producer not ready after {timeout:.0f} s")
        byte = os.read(fd, 1)
        if not byte:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"producer exited before it was ready: {err}")
        line += byte
    if line != b"ready\n":
        raise RuntimeError(f"producer said {line!r}, not ready")


def _collect_acks(tag: str, out: bytes, acked: dict[tuple[int, int], bytes],
                  result: TrialResult) -> int:
    """Record every batch producer ``tag`` printed as acknowledged; return how many
    records. A last line without its newline was cut by the kill: not counted."""
    count = 0
    for line in out.decode().split("\n")[:-1]:
        word, *numbers = line.split()
        if word != "ack" or len(numbers) != 5:
            result.problems.append(f"producer {tag} printed {line!r}")
            continue
        partition, first, n, seq, size = map(int, numbers)
        for i in range(n):
            where = (partition, first + i)
            if where in acked:
                result.broken("reused", [where], f"{TOPIC}[{partition}] offset "
                              f"{first + i} acknowledged twice (again to producer {tag})")
            acked[where] = record_value(tag, seq + i, size)
        count += n
    return count


def _check_producer_exit(tag: str, returncode: int, err: str,
                         result: TrialResult) -> None:
    """A producer must have died of our SIGKILL, not of an error; count the torn
    writes it found and cut (each with a warning)."""
    if returncode != -signal.SIGKILL or "Traceback" in err:
        result.broken("errors", [tag], f"producer {tag} exited with {returncode} before "
                      f"it was killed: {err[-2000:]}")
    result.torn += err.count("]: cut ")


def _check_partitions(root: Path, partitions: int, acked: dict[tuple[int, int], bytes],
                      rng: random.Random, result: TrialResult, when: str) -> None:
    """Read every partition with a fresh broker: offsets 0 to the end each once, none
    missing, each value one a producer sent (once), each acknowledged one as sent."""
    broker = connect(f"log://{root}")
    senders: dict[tuple[str, int], tuple[int, int]] = {}
    try:
        for p in range(partitions):
            tp = TopicPartition(TOPIC, p)
            end = broker.offsets(tp)[1]
            back = read_back(broker, tp, end, rng, result)
            if back.detections:
                result.broken("errors", [tp], f"{when}{tp} reports damage at offsets "
                              f"{spans(set(back.detections.values()))} after kills alone")
            gaps = [o for o in range(end) if o not in back.records]
            lost = [o for o in gaps if (p, o) in acked]
            if lost:
                result.broken("lost", [(p, o) for o in lost], (
                    f"{when}{tp}: acknowledged offsets {spans(lost)} were not returned"))
            if len(gaps) > len(lost):
                result.problems.append(f"{when}{tp}: offsets {spans(gaps)} below the end "
                                       f"{end} are missing (the offsets are not dense)")
            beyond = [o for (q, o) in acked if q == p and o >= end]
            if beyond:
                result.broken("lost", [(p, o) for o in beyond], (
                    f"{when}{tp}: acknowledged offsets {spans(beyond)} lie past the end "
                    f"offset {end}"))
            _judge_values(p, back, acked, senders, result, when)
    finally:
        broker.close()


def _judge_values(partition: int, back: ReadBack, acked: dict[tuple[int, int], bytes],
                  senders: dict[tuple[str, int], tuple[int, int]], result: TrialResult,
                  when: str) -> None:
    """Each value read is one a producer sent, read at one place only, and the one
    acknowledged at its offset (records of a killed write need not be acknowledged)."""
    for offset, value in back.records.items():
        where = (partition, offset)
        sender = written_by(value)
        if sender is None:
            result.broken("changed", [where], (
                f"{when}{TOPIC}[{partition}] offset {offset} holds {_short(value)}, which "
                "no producer sent"))
        elif sender in senders:
            result.broken("duplicated", [sender], (
                f"{when}record {sender} is at {senders[sender]} and again at {where}"))
        else:
            senders[sender] = where
        if where in acked and value != acked[where]:
            result.broken("changed", [where], (
                f"{when}{TOPIC}[{partition}] offset {offset} holds {_short(value)}, "
                f"acknowledged as {_short(acked[where])}"))


class _Warnings(logging.Handler):
    """Collects the log's warnings while installed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _append_after_kills(root: Path, partitions: int, acked: dict[tuple[int, int], bytes],
                        result: TrialResult) -> None:
    """Append one record to every partition: it gets an offset at or after the end
    offset (never a reused one), after cutting the torn tail of a killed write, with a
    warning (and keeping the whole batches of a killed write that were never
    published)."""
    before = connect(f"log://{root}")
    ends = [before.offsets(TopicPartition(TOPIC, p))[1] for p in range(partitions)]
    before.close()
    caught = _Warnings()
    logger = logging.getLogger("streamkit.log")
    logger.addHandler(caught)
    broker = connect(f"log://{root}")
    try:
        for p in range(partitions):
            value = record_value(f"{result.seed}.final", p, 10)
            offset = broker.produce(TOPIC, [OutgoingRecord(None, value, None, None, p)],
                                    acks="all")[0].offset
            if offset < ends[p]:
                result.broken("reused", [(p, offset)], (
                    f"the append after the kills got {TOPIC}[{p}] offset {offset}, below "
                    f"the end offset {ends[p]}"))
            elif offset > ends[p]:
                # a killed write that completed but was never published: whole, so
                # kept (not acknowledged; the read after this checks who sent it)
                result.fault += (f"; {TOPIC}[{p}]: the append kept {offset - ends[p]} "
                                 "records a killed producer wrote whole")
            acked[(p, offset)] = value
    finally:
        broker.close()
        logger.removeHandler(caught)
    result.torn += sum("]: cut " in m for m in caught.messages)
    others = [m for m in caught.messages if "]: cut " not in m]
    if others:
        result.problems.append(f"unexpected warnings from the log: {others}")


#: Every kind of trial, by the name ``tools/fault_run.py --kind`` takes.
TRIALS = {"bitflip": bitflip_trial, "kill": kill_trial}
