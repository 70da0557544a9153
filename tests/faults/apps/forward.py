"""Forwards every value of ``src`` to ``out``, unchanged (fault tests).
Broker and datadir come from STREAMKIT_* env."""
import streamkit

app = streamkit.App("forward", web_enabled=False, commit_interval=0.2,
                    session_timeout=3.0)
src = app.topic("src", value_type=bytes, value_serializer="raw")
out = app.topic("out", value_type=bytes, value_serializer="raw")


@app.agent(src)
async def forward(stream):
    async for value in stream:
        await out.send(value=value)


if __name__ == "__main__":
    app.main()
