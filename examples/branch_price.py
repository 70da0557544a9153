"""Send rides of $40 or more to ``rides.high_amount`` and the others to
``rides.low_amount``: ``python examples/branch_price.py worker``."""
from __future__ import annotations

import streamkit
from taxi import TOPIC, TaxiRide

app = streamkit.App("taxi-branch", broker="log://", web_enabled=False)
rides = app.topic(TOPIC, key_type=str, value_type=TaxiRide)
high_amount = app.topic("rides.high_amount", key_type=str, value_type=TaxiRide)
low_amount = app.topic("rides.low_amount", key_type=str, value_type=TaxiRide)

THRESHOLD = 40.0


@app.agent(rides)
async def branch(stream):
    """Forward each ride, unchanged, to the topic of its price range."""
    async for ride in stream:
        target = high_amount if ride.total_amount >= THRESHOLD else low_amount
        # forward() copies the original key, value bytes and headers
        await streamkit.current_event().forward(target)


if __name__ == "__main__":
    app.main()
