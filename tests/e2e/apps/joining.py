"""An outer stream-stream join for end-to-end tests: every result of ``left`` joined
with ``right`` (4 partitions each, within 10 s, grace 2 s) goes to the topic
``joined`` as JSON ``[key, left, right]``. Broker and datadir come from STREAMKIT_*
env. JOINING_SLEEP slows the agent down (seconds per result, awaited: other tasks,
such as the commit, run meanwhile); JOINING_WORK too, but blocking, as work on the CPU
would (nothing else runs until the agent asks for its next result)."""
import os
import time

import anyio

import streamkit

app = streamkit.App("joining", web_enabled=False, commit_interval=0.2,
                    session_timeout=3.0,
                    max_poll_records=int(os.environ.get("JOINING_MAX_POLL", "2000")))
left = app.topic("left", key_type=str, value_type=str, partitions=4)
right = app.topic("right", key_type=str, value_type=str, partitions=4)
joined = app.topic("joined", key_type=str, value_type=None)
SLOW = float(os.environ.get("JOINING_SLEEP", "0"))
WORK = float(os.environ.get("JOINING_WORK", "0"))


@app.agent(left.join(right, within=10, grace=2, how="outer", name="pairs"))
async def pairs(stream):
    async for key, (left_value, right_value) in stream.items():
        joined.send_soon(key=key, value=[key, left_value, right_value])
        if SLOW:
            await anyio.sleep(SLOW)
        if WORK:
            time.sleep(WORK)  # noqa: ASYNC251 (stands for work on the CPU)


if __name__ == "__main__":
    app.main()
