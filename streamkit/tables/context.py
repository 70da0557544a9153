"""What an app's tables are given: the broker of their changelogs, their stores, tasks.

A ``Table`` never reaches back to the App. The App builds one ``TableContext`` when it
is created and hands it to every table it declares; the worker tells it when partition
ownership starts to count (``owning``) and how to ask for an early commit
(``commit_soon``), and ``agent.test_context()`` binds the tables
to a context of its own (a memory broker and memory stores) for its duration.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamkit.tables.stores import Store

from streamkit.errors import ImproperlyConfigured
from streamkit.monitor import Monitor
from streamkit.topics import Sender
from streamkit.transport.base import Broker


#: keys a table keeps in memory by default (``table_cache_size``)
DEFAULT_CACHE_SIZE = 100_000


def _never() -> bool:
    return False


def _nothing() -> None:
    return None


def _no_app(*args: Any, **options: Any) -> Any:
    raise ImproperlyConfigured("this needs a table declared by an app (app.Table)")


@dataclass
class TableContext:
    """See the module docstring."""

    #: the app id: first part of the changelog topics' names
    app_id: str
    #: writes the changelog records (inside the worker's transaction under exactly_once)
    sender: Sender
    #: the broker of the changelogs: their partitions, restore, following
    broker: Callable[[], Broker]
    #: partitions of a table that says none and whose changelog does not exist yet
    default_partitions: int
    #: the store URL of a table that names none (``rocksdb://``, ``memory://``)
    store_url: str
    #: open the store of one table partition: (store url, name) -> store
    open_store: Callable[[str, str], Store]
    #: run ``fun(*args)`` as a task beside the agents: (name, fun, *args)
    spawn: Callable[..., None]
    monitor: Monitor
    #: True while a worker owns a set of partitions: then a write to a partition the
    #: worker does not hold (any more) is dropped, since its new owner replays it
    owning: Callable[[], bool] = field(default=_never)
    #: keys a table keeps in memory, unless it says otherwise (``cache_size=``): clean
    #: ones beyond it are dropped at each commit, and once half this many are changed
    #: and not yet committed the table asks for a commit (``commit_soon``)
    cache_size: int = DEFAULT_CACHE_SIZE
    #: ask the worker to commit at its next chance, before the commit interval is up
    commit_soon: Callable[[], None] = field(default=_nothing)
    #: replicas of the changelog topics (``topic_replication_factor``)
    replicas: int = 1
    #: False: changelog topics must exist, the tables do not create them
    #: (``topic_allow_declare``)
    allow_declare: bool = True
    #: declare a table the app does not declare itself (a join's): it is opened,
    #: committed and restored with the app's tables
    add_table: Callable[[Any], Any] = field(default=_no_app)
    #: a topic of the app, ``app.topic(name, **options)`` (a join's ``changes()``)
    topic: Callable[..., Any] = field(default=_no_app)
