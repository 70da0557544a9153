"""``Committer``: the one object that commits, on every path (the commit interval, a
rebalance, a graceful stop, a new subscription).

A commit, in this order (what makes processing at-least-once, and, in a transaction,
exactly-once):

1. note how far the agents are: per partition, the offset after the last event they
   are done with (``Fetcher.positions``);
2. write the records they sent, forwarded or dead-lettered (the sender's buffer);
3. write each table's changed keys to its changelog (``Table.flush``);
4. under ``exactly_once``: add the offsets of step 1 to the transaction and commit it,
   so the records of steps 2-3 and the offsets become visible together;
5. write the changes of step 3 to the stores, with the changelog offset they reach
   (``Table.apply_flushed``): a store never holds what its changelog does not;
6. under ``at_least_once``: commit the offsets of step 1 to the consumer group.

If a step fails nothing after it happens: the offsets stay where they were, so the
events are processed again (under exactly_once, the transaction is aborted and the
tables forget the changes it held).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from streamkit.errors import CommitFailed, PartitionsLost
from streamkit.monitor import Monitor
from streamkit.streams.fetcher import Fetcher
from streamkit.tables.table import Table
from streamkit.topics import Sender
from streamkit.transport.base import GroupConsumer, Transaction
from streamkit.types import TopicPartition

logger = logging.getLogger("streamkit.worker")


class Committer:
    """See the module docstring. ``consumer`` and ``transaction`` are set by the worker
    once it has joined its group (and opened its transaction)."""

    def __init__(self, fetcher: Fetcher, sender: Sender, tables: Iterable[Table],
                 monitor: Monitor) -> None:
        self._fetcher = fetcher
        self._sender = sender
        self._tables = list(tables)
        self._monitor = monitor
        self.consumer: GroupConsumer | None = None
        #: the open transaction under exactly_once (``kafka://``)
        self.transaction: Transaction | None = None
        #: the offsets committed, per partition this worker holds
        self.committed: dict[TopicPartition, int] = {}

    def commit(self, revoking: set[TopicPartition] | None = None) -> None:
        """Commit what the agents are done with (see the module docstring). While
        ``revoking`` partitions, at-least-once commits only their offsets: the others
        stay this worker's and follow at the next commit."""
        started = time.perf_counter()
        positions = self._fetcher.positions()                            # 1
        self._sender.buffer.flush()                                      # 2
        for table in self._tables:                                       # 3
            table.flush()
        consumer = self.consumer
        held = consumer.assignment() if consumer is not None else set()
        if revoking is not None and self.transaction is None:
            held &= revoking
        offsets = {tp: offset for tp, offset in positions.items()
                   if tp in held and self.committed.get(tp) != offset}
        if self.transaction is not None:
            try:
                self._commit_transaction(offsets)                        # 4
            except PartitionsLost as exc:
                logger.warning("%s", exc)
                self.abandon()
                return
        for table in self._tables:                                       # 5
            table.apply_flushed()
        if self.transaction is not None:
            self.transaction.begin()
        elif not offsets or not self._commit_offsets(offsets):           # 6
            return
        self.committed.update(offsets)
        self._monitor.on_commit(time.perf_counter() - started)

    def _commit_transaction(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.transaction is not None
        try:
            if offsets:
                self.transaction.send_offsets(self.consumer, offsets)
            self.transaction.commit()
        except PartitionsLost:
            raise                  # (before anything was sent: the caller drops it all)
        except Exception:
            for table in self._tables:
                table.discard_uncommitted()
            logger.error("transaction failed: nothing of it is visible; the worker stops "
                         "and a restart replays from the last committed offsets")
            raise

    def abandon(self) -> None:
        """Partitions lost (this worker was removed from its group): nothing done
        since the last commit may be committed now, since the partitions' new owner
        processes those events again. Under exactly_once the open transaction is
        aborted, with the records still buffered (written into it first), and the
        next begins; the tables forget their uncommitted changes. Under at_least_once
        the offsets are simply not committed."""
        for table in self._tables:
            table.discard_uncommitted()
        if self.transaction is None:
            return
        try:
            self._sender.buffer.flush()        # into the transaction being aborted
        finally:
            self.transaction.abort()
        self.transaction.begin()
        logger.warning("transaction aborted: its partitions were lost; their new "
                       "owner processes their events since the last commit again")

    def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> bool:
        assert self.consumer is not None
        try:
            self.consumer.commit(offsets)
        except CommitFailed as exc:
            # a rebalance is under way: the new owner replays from the last commit
            logger.warning("commit refused (%s); going on, events since the last commit "
                           "may be processed again", exc)
            return False
        return True

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions given up: their commits are their new owner's."""
        for tp in tps:
            self.committed.pop(tp, None)
