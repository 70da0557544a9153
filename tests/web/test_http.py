"""Every HTTP endpoint of a real running worker (in-process, memory:// broker)."""
from __future__ import annotations

import json
import socket

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import streamkit

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


class Ride(streamkit.Record, serializer="json"):
    id: int
    vendorId: int


def counting_app(tmp_path, **settings):
    """Rides keyed by vendor; counts per vendor (int keys), per vendor name (str keys),
    a JSON-keyed table without key_type, and 10 s tumbling windows per vendor."""
    app = new_app("webcount", tmp_path, **settings)
    rides = app.topic("rides", key_type=str, value_type=Ride)
    by_vendor = app.Table("by_vendor", default=int, key_type=int, help="rides per vendor")
    by_name = app.Table("by_name", default=int, key_type=str)
    loose = app.Table("loose", default=int)
    windows = app.Table("windows", default=int).tumbling(10)

    @app.agent(rides)
    async def count(stream):
        """Counts rides."""
        async for ride in stream:
            by_vendor[ride.vendorId] += 1
            by_name[f"vendor-{ride.vendorId}"] += 1
            loose[str(ride.vendorId)] += 1       # the string "1", not the number 1
            loose[ride.vendorId * 100] += 1      # the number 100
            windows[ride.vendorId] += 1

    return app


def produce(app, rides, *, start_ms=1_000_000):
    """Send rides (``(id, vendor)`` pairs) with streamkit.Producer, keyed by vendor."""
    producer = streamkit.Producer(app.broker)
    for n, (ride_id, vendor) in enumerate(rides):
        producer.send("rides", key=str(vendor),
                      value=json.dumps({"id": ride_id, "vendorId": vendor}),
                      timestamp_ms=start_ms + n)
    producer.flush()
    producer.close()


async def processed(client, count):
    async def check():
        body = (await client.get("/api/status")).json()
        committed = all((p["committed"] or 0) == p["end"] for p in body["partitions"])
        return body["agents"][0]["events_total"] >= count and committed and \
            all(t["size"] for t in body["tables"]) and body
    return await eventually(check, what=f"{count} events processed")


def vendors(n):
    return [(i, i % 5 + 1) for i in range(n)]      # vendors 1..5


# -- health ----------------------------------------------------------------------------
async def test_healthz_and_readyz_of_a_running_worker(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "partitions_assigned": 4}


async def test_readyz_is_503_when_no_worker_runs(tmp_path):
    from streamkit.web.server import create_app
    app = counting_app(tmp_path)
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["ready"] is False
        assert (await client.get("/healthz")).status_code == 200


# -- status ------------------------------------------------------------------------------
async def test_status_reports_agents_partitions_tables_and_uptime(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        produce(app, vendors(50))
        status = await processed(client, 50)
        assert status["app"] == "webcount" and status["ready"] is True
        assert status["uptime"] > 0
        [agent] = status["agents"]
        assert agent["name"] == "count" and agent["topics"] == ["rides"]
        assert agent["events_total"] == 50
        assert agent["errors"] == 0 and agent["restarts"] == 0
        assert agent["help"] == "Counts rides."
        rides = [p for p in status["partitions"] if p["topic"] == "rides"]
        assert sorted(p["partition"] for p in rides) == [0, 1, 2, 3]
        assert sum(p["end"] for p in rides) == 50
        for p in rides:
            assert p["committed"] == p["end"] and p["lag"] == 0
        tables = {t["name"]: t for t in status["tables"]}
        assert tables["by_vendor"]["size"] == 5
        assert tables["by_vendor"]["size_exact"] is True
        assert tables["by_vendor"]["help"] == "rides per vendor"
        assert tables["by_vendor"]["changelog_topic"] == "webcount-by_vendor-changelog"
        assert tables["by_vendor"]["changelog"], "changelog offsets per partition"
        for row in tables["by_vendor"]["changelog"]:
            assert row["offset"] == row["end"]
        assert tables["windows"]["windowed"] is True
        assert status["dead_letters_total"] == 0
        assert status["events_in"] == {"rides": 50}
        # the events/s history fills once a second
        await anyio.sleep(1.2)
        status = (await client.get("/api/status")).json()
        assert status["agents"][0]["history"]


async def test_status_shows_lag_while_the_agent_is_held_up(tmp_path):
    app = new_app("weblag", tmp_path)
    gate = anyio.Event()

    @app.agent(app.topic("rides", value_type=None))
    async def slow(stream):
        async for _ in stream:
            await gate.wait()

    async with running_worker(app) as client:
        producer = streamkit.Producer(app.broker)
        for i in range(40):
            producer.send("rides", value=b"{}", partition=i % 2)
        producer.flush()
        producer.close()

        async def lagging():
            body = (await client.get("/api/status")).json()
            return body["lag"] >= 39 and body
        status = await eventually(lagging, what="lag reported")
        by_partition = {p["partition"]: p for p in status["partitions"]}
        assert by_partition[0]["end"] == 20 and by_partition[1]["end"] == 20
        assert by_partition[0]["lag"] + by_partition[1]["lag"] >= 39
        assert by_partition[2]["lag"] == 0
        gate.set()
        await eventually(lambda: _lag(client, 0), what="lag back to 0")


async def _lag(client, want):
    return (await client.get("/api/status")).json()["lag"] == want


async def test_status_counts_dead_letters(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        producer = streamkit.Producer(app.broker)
        producer.send("rides", key="1", value=b'{"id": 1, "vendorId": 1}')
        producer.send("rides", key="1", value=b'{"id": 2, "vendorId"')      # not JSON
        producer.send("rides", key="1", value=b'{"id": "x", "vendorId": 1}')  # bad field
        producer.flush()
        producer.close()

        async def dead():
            body = (await client.get("/api/status")).json()
            return body["dead_letters_total"] == 2 and body
        status = await eventually(dead, what="2 dead letters")
        assert status["dead_letters"] == {"rides": 2}
        families = await _metrics(client)
        assert _sample(families, "streamkit_dead_letters_total", topic="rides") == 2


# -- tables ------------------------------------------------------------------------------
async def test_table_key_is_parsed_with_the_table_key_type(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        produce(app, vendors(50))
        await processed(client, 50)
        one = await client.get("/table/by_vendor/1")
        assert one.status_code == 200
        assert one.json() == {"table": "by_vendor", "key": 1, "value": 10}
        named = await client.get("/table/by_name/vendor-3")
        assert named.json() == {"table": "by_name", "key": "vendor-3", "value": 10}
        # no key_type: JSON first ("100" is the number 100), else the string
        assert (await client.get("/table/loose/100")).json()["key"] == 100
        as_string = await client.get("/table/loose/1")
        assert as_string.status_code == 200 and as_string.json()["key"] == "1"
        assert (await client.get('/table/loose/"2"')).json()["value"] == 10


async def test_table_errors_are_json_with_the_right_status(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        produce(app, vendors(10))
        await processed(client, 10)
        missing_table = await client.get("/table/nope")
        assert missing_table.status_code == 404
        assert "nope" in missing_table.json()["error"]
        assert "by_vendor" in missing_table.json()["tables"]
        assert (await client.get("/table/nope/1")).status_code == 404
        missing_key = await client.get("/table/by_vendor/99")
        assert missing_key.status_code == 404
        assert "99" in missing_key.json()["error"]
        bad_key = await client.get("/table/by_vendor/abc")
        assert bad_key.status_code == 400
        assert "'abc' is not a valid int" in bad_key.json()["error"]
        assert (await client.get("/table/by_vendor/1.5")).status_code == 400
        object_key = await client.get('/table/loose/{"a":1}')
        assert object_key.status_code == 400
        for limit in ("0", "-1", "x", "100001"):
            response = await client.get("/table/by_vendor", params={"limit": limit})
            assert response.status_code == 400, limit
            assert "limit" in response.json()["error"]
        bad_after = await client.get("/table/by_vendor", params={"after": "abc"})
        assert bad_after.status_code == 400
        unknown = await client.get("/no/such/page")
        assert unknown.status_code == 404 and unknown.json()["status"] == 404
        assert (await client.post("/api/status")).status_code == 405   # read-only


async def test_table_pages_cover_every_key_once_in_order(tmp_path):
    app = new_app("webpages", tmp_path)
    table = app.Table("squares", key_type=int)

    @app.agent(app.topic("numbers", value_type=None))
    async def square(stream):
        async for n in stream:
            table[n] = n * n

    async with running_worker(app) as client:
        producer = streamkit.Producer(app.broker)
        for n in range(23):
            producer.send("numbers", key=str(n), value=str(n))
        producer.flush()
        producer.close()
        await eventually(lambda: len(table) == 23, what="23 keys")
        keys, after, pages = [], None, 0
        while True:
            params = {"limit": 5} | ({"after": after} if after is not None else {})
            page = (await client.get("/table/squares", params=params)).json()
            pages += 1
            keys += [item["key"] for item in page["items"]]
            for item in page["items"]:
                assert item["value"] == item["key"] ** 2
            after = page.get("next")
            if after is None:
                break
        assert keys == list(range(23)) and pages == 5
        everything = (await client.get("/table/squares")).json()
        assert len(everything["items"]) == 23 and "next" not in everything


async def test_windowed_table_returns_its_windows(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        # vendor 1: three rides in [1000, 1010), two in [1010, 1020)
        producer = streamkit.Producer(app.broker)
        for i, ts in enumerate((1_000_000, 1_005_000, 1_009_999, 1_010_000, 1_015_000)):
            producer.send("rides", key="1", value=json.dumps({"id": i, "vendorId": 1}),
                          timestamp_ms=ts)
        producer.flush()
        producer.close()
        await processed(client, 5)
        response = await client.get("/table/windows/1")
        assert response.status_code == 200
        assert response.json()["value"] == [
            {"start": 1000.0, "end": 1010.0, "value": 3},
            {"start": 1010.0, "end": 1020.0, "value": 2}]
        assert (await client.get("/table/windows/7")).status_code == 404
        listing = (await client.get("/table/windows")).json()
        assert listing["windowed"] is True
        assert listing["items"] == [{"key": 1, "value": response.json()["value"]}]


# -- metrics -----------------------------------------------------------------------------
async def _metrics(client):
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.text)}


def _sample(families, name, **labels):
    for family in families.values():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics_are_prometheus_text_named_streamkit(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        produce(app, vendors(50))
        await processed(client, 50)
        await eventually(lambda: app.monitor.commits > 0, what="a commit")
        families = await _metrics(client)
        assert all(name.startswith("streamkit_") for name in families)
        assert _sample(families, "streamkit_events_in_total", topic="rides") == 50
        assert _sample(families, "streamkit_agent_events_total", agent="count") == 50
        assert _sample(families, "streamkit_agent_errors_total", agent="count") == 0
        assert _sample(families, "streamkit_consumer_lag", topic="rides",
                       partition="0") == 0
        ends = sum(_sample(families, "streamkit_log_end_offset", topic="rides",
                           partition=str(p)) for p in range(4))
        assert ends == 50
        assert _sample(families, "streamkit_table_size", table="by_vendor") == 5
        assert _sample(families, "streamkit_commits_total") >= 1
        assert _sample(families, "streamkit_commit_latency_seconds_count") >= 1
        assert _sample(families, "streamkit_commit_latency_seconds_sum") > 0
        # every event processed is in the processing-latency histogram
        assert _sample(families, "streamkit_processing_latency_seconds_count") == 50
        assert _sample(families, "streamkit_processing_latency_seconds_bucket",
                       le="+Inf") == 50
        assert _sample(families, "streamkit_worker_ready") == 1
        assert _sample(families, "streamkit_uptime_seconds") > 0
        assert "streamkit_late_events" in families
        assert "streamkit_dead_letters" in families


async def test_late_window_events_are_counted(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        producer = streamkit.Producer(app.broker)
        # stream time reaches 1030 s; the record at 1000 s is for a closed window
        for i, ts in enumerate((1_000_000, 1_030_000, 1_000_500)):
            producer.send("rides", key="2", value=json.dumps({"id": i, "vendorId": 2}),
                          timestamp_ms=ts)
        producer.flush()
        producer.close()
        await processed(client, 3)
        families = await _metrics(client)
        assert _sample(families, "streamkit_late_events_total", table="windows") == 1
        status = (await client.get("/api/status")).json()
        assert status["late_events"] == {"windows": 1}


# -- pages and the dashboard -------------------------------------------------------------
async def test_app_pages_serve_json_and_html(tmp_path):
    app = counting_app(tmp_path)

    @app.page("/vendors")
    def vendors_page():
        return {"count": 5, "ids": (1, 2)}

    @app.page("/hello")
    async def hello(request):
        return f"<h1>hello {request.query_params.get('name', '')}</h1>"

    @app.page("/vendor/{vendor}")
    async def one_vendor(request):
        vendor = int(request.path_params["vendor"])
        return {"vendor": vendor, "rides": app.tables["by_vendor"][vendor]}

    @app.page("/broken")
    def broken():
        raise RuntimeError("no luck")

    async with running_worker(app) as client:
        produce(app, vendors(10))
        await processed(client, 10)
        assert (await client.get("/vendor/2")).json() == {"vendor": 2, "rides": 2}
        failing = await client.get("/broken")
        assert failing.status_code == 500
        assert failing.json()["error"] == "page /broken raised RuntimeError: no luck"
        assert (await client.get("/healthz")).status_code == 200    # still serving
        page = await client.get("/vendors")
        assert page.status_code == 200 and page.json() == {"count": 5, "ids": [1, 2]}
        html = await client.get("/hello", params={"name": "ada"})
        assert html.headers["content-type"].startswith("text/html")
        assert html.text == "<h1>hello ada</h1>"
        assert (await client.get("/api/status")).json()["pages"] == [
            "/broken", "/hello", "/vendor/{vendor}", "/vendors"]


async def test_dashboard_is_one_self_contained_page(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "webcount" in html and "/api/status" in html
        # nothing loaded from elsewhere: no external scripts, styles or fonts
        assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in html and "src=" not in html


# -- where it listens --------------------------------------------------------------------
def _listening(port: int) -> list[str]:
    """Local addresses of sockets listening on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for path, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, state = fields[1], fields[3]
            host, port_hex = address.split(":")
            if state == "0A" and int(port_hex, 16) == port:     # 0A: LISTEN
                found.append(_decode_host(host, width))
    return found


def _decode_host(hex_host: str, width: int) -> str:
    raw = bytes.fromhex(hex_host)
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))     # TEST-NET: nothing is sent
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@pytest.mark.skipif(not __import__("os").path.exists("/proc/net/tcp"),
                    reason="needs Linux /proc/net/tcp")
async def test_by_default_it_listens_on_loopback_only(tmp_path):
    app = counting_app(tmp_path)
    assert app.conf.web_host == "127.0.0.1"
    async with running_worker(app) as client:
        port = app.conf.web_port
        assert _listening(port) == ["127.0.0.1"]
        assert (await client.get("/healthz")).status_code == 200
        outside = _outside_address()
        if outside is not None:
            with pytest.raises(httpx.ConnectError):
                await httpx.AsyncClient().get(f"http://{outside}:{port}/healthz")
    assert _listening(port) == [], "the server stops with the worker"


async def test_on_loopback_only_loopback_host_names_are_answered(tmp_path):
    """DNS rebinding: a page from evil.example re-resolved to 127.0.0.1 is refused."""
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        port = app.conf.web_port
        for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}",
                     f"[::1]:{port}", "app.localhost"):
            response = await client.get("/api/status", headers={"host": host})
            assert response.status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     ""):
            response = await client.get("/table/by_vendor", headers={"host": host})
            assert response.status_code == 400, host
            assert "not allowed" in response.json()["error"]


async def test_web_host_and_port_can_be_chosen(tmp_path):
    app = counting_app(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with running_worker(app, web_port=port, web_host="localhost") as client:
        assert app.conf.web_port == port
        assert (await client.get("/healthz")).status_code == 200


async def test_a_taken_port_leaves_the_worker_running_without_web(tmp_path, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = counting_app(tmp_path, web_port=port)
        from streamkit.cli.services import worker_services
        from streamkit.worker import Worker
        worker = Worker(app, services=worker_services(app), install_signal_handlers=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run_async)
            await eventually(lambda: f"web server on 127.0.0.1:{port} failed" in caplog.text,
                             what="the bind error logged")
            produce(app, vendors(10))
            await eventually(lambda: app.agents["count"].events_total == 10,
                             what="events processed without the web server")
            worker.stop()


async def test_web_enabled_false_serves_nothing(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = counting_app(tmp_path, web_enabled=False, web_port=port)
    from streamkit.cli.services import worker_services
    from streamkit.worker import Worker
    worker = Worker(app, services=worker_services(app), install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        await eventually(lambda: worker.ready, what="worker ready")
        await anyio.sleep(0.2)
        assert _listening(port) == []
        worker.stop()


async def test_record_values_and_tuple_keys_come_out_as_json(tmp_path):
    from datetime import datetime

    class Last(streamkit.Record, serializer="json"):
        id: int
        seen: datetime

    app = new_app("webrecords", tmp_path)
    latest = app.Table("latest", value_type=Last)
    pairs = app.Table("pairs", default=int)

    @app.agent(app.topic("rides", key_type=str, value_type=Ride))
    async def remember(stream):
        async for ride in stream:
            latest[ride.vendorId] = Last(id=ride.id, seen=datetime(2020, 7, 1, 12, 0))
            pairs[(ride.vendorId, ride.id % 2)] += 1

    async with running_worker(app) as client:
        produce(app, [(7, 1), (8, 1)])
        await eventually(lambda: len(pairs) == 2, what="2 pairs")
        one = (await client.get("/table/latest/1")).json()
        assert one["value"]["id"] == 8
        assert one["value"]["seen"].startswith("2020-07-01")
        pair = await client.get("/table/pairs/[1,0]")
        assert pair.status_code == 200 and pair.json() == {"table": "pairs", "key": [1, 0],
                                                           "value": 1}
        listing = (await client.get("/table/pairs", params={"limit": 1})).json()
        assert listing["items"] == [{"key": [1, 0], "value": 1}]
        rest = (await client.get("/table/pairs", params={"after": listing["next"]})).json()
        assert rest["items"] == [{"key": [1, 1], "value": 1}]


async def test_big_tables_report_the_store_count_without_a_scan(tmp_path):
    from streamkit.web.status import EXACT_SIZE_LIMIT
    app = new_app("webbig", tmp_path)
    table = app.Table("big", key_type=int)

    @app.agent(app.topic("numbers", value_type=None))
    async def keep(stream):
        async for n in stream:
            table[n] = n

    count = EXACT_SIZE_LIMIT + 500
    async with running_worker(app) as client:
        producer = streamkit.Producer(app.broker, linger_ms=50, batch_size=2000)
        for n in range(count):
            producer.send("numbers", key=str(n), value=str(n))
        producer.flush()
        producer.close()

        async def big():
            body = (await client.get("/api/status")).json()
            summary = body["tables"][0]
            return summary["size"] == count and not summary["size_exact"] and summary
        summary = await eventually(big, what=f"{count} keys flushed")
        assert summary["size_exact"] is False       # counted by the stores, not scanned
        page = (await client.get("/table/big", params={"limit": 3, "after": "4999"})).json()
        assert [item["key"] for item in page["items"]] == [5000, 5001, 5002]
