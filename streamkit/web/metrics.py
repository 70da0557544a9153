"""``GET /metrics``: Prometheus text, read from the worker's own counters at scrape time.

A custom collector turns the Monitor, the agents, the consumer's partitions and the
tables into ``streamkit_*`` metric families when Prometheus scrapes, so the stream
pays nothing per event for metrics. Each App gets its own registry (two workers in
one test process do not clash).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric, SummaryMetricFamily)
from prometheus_client.registry import Collector

from streamkit.web import status

if TYPE_CHECKING:
    from streamkit.app import App

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StreamkitCollector(Collector):
    """Reads an App's counters at scrape time (see the module docstring)."""

    def __init__(self, app: App, offsets: status.Offsets | None = None) -> None:
        self.app = app
        self.offsets = offsets or status.Offsets(app)

    def collect(self) -> Iterator[Metric]:
        yield from self._events()
        yield from self._agents()
        yield from self._partitions()
        yield from self._commits()
        yield from self._tables()
        yield from self._worker()
        yield from self._processing_latency()

    def _events(self) -> Iterator[Metric]:
        monitor = self.app.monitor
        yield _counter("streamkit_events_in", "Records fetched, by topic.", "topic",
                       monitor.events_in)
        yield _counter("streamkit_events_out", "Records sent by the app, by topic.",
                       "topic", monitor.events_out)
        yield _counter("streamkit_dead_letters", "Undecodable records sent to the "
                       "dead-letter topic, by source topic.", "topic", monitor.dead_letters)
        late = dict(monitor.late_events)
        yield _counter("streamkit_late_events", "Events dropped because their window "
                       "had closed, and writes to a versioned table older than its "
                       "history, by table.", "table", late)
        yield _counter("streamkit_join_dropped_events", "Stream events a stream-table "
                       "join dropped (inner join with no table value, no key or no "
                       "value), by table.", "table", dict(monitor.join_drops))

    def _agents(self) -> Iterator[Metric]:
        agents = self.app.agents
        yield _counter("streamkit_agent_events", "Events an agent has finished.", "agent",
                       {n: a.events_total for n, a in agents.items()})
        yield _counter("streamkit_agent_errors", "Exceptions raised by an agent.", "agent",
                       {n: a.errors for n, a in agents.items()})
        yield _counter("streamkit_agent_restarts", "Times an agent was restarted.",
                       "agent", {n: a.restarts for n, a in agents.items()})

    def _partitions(self) -> Iterator[Metric]:
        labels = ["topic", "partition"]
        lag = GaugeMetricFamily("streamkit_consumer_lag", "End offset minus committed "
                                "offset, per assigned partition.", labels=labels)
        committed = GaugeMetricFamily("streamkit_consumer_committed_offset",
                                      "Committed offset of the app's consumer group.",
                                      labels=labels)
        position = GaugeMetricFamily("streamkit_consumer_position",
                                     "Next offset the worker will fetch.", labels=labels)
        end = GaugeMetricFamily("streamkit_log_end_offset",
                                "Offset the next record of the partition will get.",
                                labels=labels)
        for row in status.partitions(self.app, self.offsets):
            key = [row["topic"], str(row["partition"])]
            lag.add_metric(key, row["lag"])
            position.add_metric(key, row["position"])
            end.add_metric(key, row["end"])
            if row["committed"] is not None:
                committed.add_metric(key, row["committed"])
        yield from (lag, committed, position, end)

    def _commits(self) -> Iterator[Metric]:
        monitor = self.app.monitor
        yield SummaryMetricFamily(
            "streamkit_commit_latency_seconds", "Time to flush sends and tables and commit "
            "offsets, per commit.", count_value=monitor.commits,
            sum_value=monitor.commit_seconds_total)
        yield CounterMetricFamily("streamkit_commits", "Offset commits.",
                                  value=monitor.commits)

    def _tables(self) -> Iterator[Metric]:
        size = GaugeMetricFamily("streamkit_table_size", "Keys held by this worker "
                                 "(windowed tables: windows). Exact up to "
                                 f"{status.EXACT_SIZE_LIMIT} keys, else the store's "
                                 "estimate.", labels=["table"])
        offsets = GaugeMetricFamily("streamkit_table_changelog_offset", "Changelog "
                                    "offset the table's store has reached.",
                                    labels=["table", "partition"])
        for table in self.app.tables.values():
            summary = status.table_summary(self.app, table, self.offsets)
            size.add_metric([table.name], summary["size"])
            for row in summary["changelog"]:
                if row["offset"] is not None:
                    offsets.add_metric([table.name, str(row["partition"])], row["offset"])
        yield size
        yield offsets

    def _worker(self) -> Iterator[Metric]:
        app = self.app
        yield GaugeMetricFamily("streamkit_uptime_seconds", "Seconds since the app "
                                "started.", value=app.monitor.uptime)
        yield GaugeMetricFamily("streamkit_worker_ready", "1 when partitions are "
                                "assigned and tables restored.",
                                value=1 if status.is_ready(app) else 0)
        yield GaugeMetricFamily("streamkit_events_per_second", "Records fetched per "
                                "second over the last few seconds.",
                                value=app.monitor.events_per_second())

    def _processing_latency(self) -> Iterator[Metric]:
        # The Monitor may offer a histogram of per-batch processing time as
        # ``processing_histogram() -> ([(upper_bound, cumulative_count), ...], sum)``
        # (upper bounds ascending, the last one +inf); without it no metric is made.
        histogram = getattr(self.app.monitor, "processing_histogram", None)
        if histogram is None:
            return
        buckets, total = histogram()
        yield HistogramMetricFamily(
            "streamkit_processing_latency_seconds", "Time from a batch reaching its "
            "stream to the agent finishing it.",
            buckets=[(_bound(b), float(c)) for b, c in buckets], sum_value=total)


def _bound(upper: float) -> str:
    return "+Inf" if upper == float("inf") else repr(float(upper))


def _counter(name: str, doc: str, label: str, values: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family


def registry_for(app: App, offsets: status.Offsets | None = None) -> CollectorRegistry:
    """A registry holding only this app's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StreamkitCollector(app, offsets))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
