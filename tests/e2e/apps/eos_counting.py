"""The torture app (issue 19): count events per key into a table and forward each
event to ``eos-out``. Broker and datadir come from STREAMKIT_* env; the guarantee from
EOS_GUARANTEE, the commit interval from EOS_COMMIT_INTERVAL, a per-event sleep (to keep
the worker busy while it is killed) from EOS_EVENT_WORK (blocking: the agent does not
await inside an event) or EOS_EVENT_SLEEP (awaited inside the event).

EOS_MARKER_SLEEP (seconds, at most): a random pause after each commit or abort marker
the coordinator writes, which widens the middle of a commit (state ``prepare_commit``,
some partitions marked, others not) so that random SIGKILLs land inside commits too.
EOS_SAY_COMMITS: print ``COMMITTED`` after each commit.
"""
import json
import os
import random
import time

import streamkit
from streamkit.log.partition import Partition

MARKER_SLEEP = float(os.environ.get("EOS_MARKER_SLEEP", "0"))
if MARKER_SLEEP:
    _write_marker = Partition.write_marker

    def _slow_write_marker(self, *args, **kwargs):
        result = _write_marker(self, *args, **kwargs)
        time.sleep(random.uniform(0, MARKER_SLEEP))
        return result

    Partition.write_marker = _slow_write_marker


if os.environ.get("EOS_SAY_COMMITS"):
    # a line after each commit, so that a test can pause the worker between two
    from streamkit.commit import Committer
    _commit = Committer.commit

    def _commit_and_say(self, *args, **kwargs):
        result = _commit(self, *args, **kwargs)
        print("COMMITTED", flush=True)
        return result

    Committer.commit = _commit_and_say


app = streamkit.App("eoscount", web_enabled=False,
                    processing_guarantee=os.environ.get("EOS_GUARANTEE", "exactly_once"),
                    commit_interval=float(os.environ.get("EOS_COMMIT_INTERVAL", "0.05")),
                    session_timeout=float(os.environ.get("EOS_SESSION_TIMEOUT", "3.0")),
                    topic_partitions=4)
events = app.topic("eos-in", key_type=str, value_type=int, partitions=4)
out = app.topic("eos-out", key_type=str, value_type=None, partitions=4)
counts = app.Table("counts", default=int, partitions=4)
SLEEP = float(os.environ.get("EOS_EVENT_SLEEP", "0"))
WORK = float(os.environ.get("EOS_EVENT_WORK", "0"))


@app.agent(events)
async def count(stream):
    async for key, value in stream.items():
        counts[key] += 1
        out.send_soon(key=key, value={"id": value, "pid": os.getpid()})
        if WORK:
            time.sleep(WORK)  # noqa: ASYNC251 - work that holds the loop, on purpose
        if SLEEP:
            import anyio
            await anyio.sleep(SLEEP)


@app.timer(0.3)
async def report():
    print("REPORT", json.dumps(dict(counts.items()), sort_keys=True), flush=True)


if __name__ == "__main__":
    app.main()
