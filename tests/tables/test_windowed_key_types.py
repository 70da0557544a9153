"""A windowed table with a key type reads back the keys its store holds: the stored
key is ``[key, [start, end]]``, and its key part is read as the table's key type."""
from __future__ import annotations

import itertools

import pytest

import streamkit
from tests.running import run_until

_ids = itertools.count()


@pytest.mark.anyio
@pytest.mark.parametrize("key_type, keys", [(int, [0, 1, 2]), (str, ["a", "b", "c"])])
async def test_keys_of_a_typed_windowed_table_come_back_from_the_store(
        tmp_path, key_type, keys):
    name = f"typedwindows{next(_ids)}"
    # a cache of 2 keys: after the commit most keys are read from RocksDB
    app = streamkit.App(name, broker=f"log://{tmp_path}/log", datadir=tmp_path,
                        web_enabled=False, table_cache_size=2)
    counts = app.Table("counts", default=int, key_type=key_type).tumbling(60, expires=3600)
    topic = app.topic("events", key_type=key_type, value_type=key_type, partitions=1)
    seen = []

    @app.agent(topic)
    async def count(stream):
        async for value in stream:
            counts[value] += 1
            seen.append(value)

    for i in range(30):
        await topic.send(key=keys[i % 3], value=keys[i % 3])
    worker = streamkit.Worker(app, install_signal_handlers=False)
    read: dict[str, object] = {}

    def counted_then_read() -> bool:
        if len(seen) < 30:
            return False
        worker.commit()           # (the stores are open while the worker runs)
        read["items"] = sorted(counts.items())
        read["windows"] = {key: counts.windows(key) for key in keys}
        read["stored"] = sorted(counts.table.items())
        return True
    await run_until(worker, counted_then_read, within=10)
    assert read["items"] == [(key, 10) for key in keys]
    windows = read["windows"]
    for key in keys:
        [(window, value)] = windows[key]
        assert value == 10 and window[1] - window[0] == 60
    assert read["stored"] == sorted(((key, windows[key][0][0]), 10) for key in keys)
