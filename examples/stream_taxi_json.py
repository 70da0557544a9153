"""Print every taxi ride as it arrives: ``python examples/stream_taxi_json.py worker``."""
from __future__ import annotations

import streamkit
from taxi import TOPIC, TaxiRide

app = streamkit.App("taxi-stream", broker="log://", web_enabled=False)
rides = app.topic(TOPIC, key_type=str, value_type=TaxiRide)


@app.agent(rides)
async def start_reading(stream):
    async for ride in stream:
        print(ride, flush=True)


if __name__ == "__main__":
    app.main()
