"""The dashboard in headless Chromium (Debian's package) driven by Playwright, against a
worker running as its own process on an embedded log in tmp."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

import streamkit

CHROMIUM = os.environ.get("STREAMKIT_CHROMIUM") or shutil.which("chromium") or \
    "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"Chromium not installed ({CHROMIUM}): apt-get install chromium"),
]

APP = textwrap.dedent('''
    import streamkit

    class Ride(streamkit.Record, serializer="json"):
        id: int
        vendorId: int

    app = streamkit.App("dashapp", commit_interval=0.2, topic_partitions=3)
    rides = app.topic("rides", key_type=str, value_type=Ride)
    vendor_rides = app.Table("vendor_rides", default=int, key_type=int,
                             help="rides per vendor")

    @app.agent(rides)
    async def count(stream):
        async for ride in stream:
            vendor_rides[ride.vendorId] += 1

    if __name__ == "__main__":
        app.main()
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def produce(broker: str, rides: list[tuple[int, int]], bad: int = 0,
            topic: str = "rides", timestamps: list[int] | None = None) -> None:
    producer = streamkit.Producer(broker=broker, default_partitions=3)
    for n, (ride_id, vendor) in enumerate(rides):
        producer.send(topic, key=str(vendor),
                      value=json.dumps({"id": ride_id, "vendorId": vendor}),
                      timestamp_ms=timestamps[n] if timestamps else None)
    for _ in range(bad):
        producer.send(topic, key="1", value=b"{not json")
    producer.flush()
    producer.close()


@contextlib.contextmanager
def worker_process(tmp_path: Path, source: str, name: str):
    """A ``python <name>.py worker --web-port N`` process of the app ``source``, on an
    embedded log in ``tmp_path``; yields (base url, broker url, process)."""
    app_file = tmp_path / f"{name}.py"
    app_file.write_text(source)
    port = free_port()
    broker = f"log://{tmp_path}/log"
    log = open(tmp_path / "worker.log", "wb")
    env = dict(os.environ, STREAMKIT_DATADIR=str(tmp_path), STREAMKIT_BROKER=broker,
               PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(app_file), "worker", "--web-port",
                             str(port)], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and
                 httpx.get(f"{base}/readyz").status_code == 200, what="worker ready")
        yield base, broker, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        print((tmp_path / "worker.log").read_text(errors="replace")[-3000:])


@pytest.fixture
def worker(tmp_path):
    """The dashapp worker; yields (base url, broker url, process)."""
    with worker_process(tmp_path, APP, "dashapp") as running:
        yield running


@contextlib.contextmanager
def chromium(sync_api):
    """A headless Chromium (Debian's), closed at the end of the block."""
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            yield browser
        finally:
            browser.close()


def table_value(base: str, key: int):
    response = httpx.get(f"{base}/table/vendor_rides/{key}")
    return response.json()["value"] if response.status_code == 200 else None


def test_dashboard_shows_a_table_value_change_and_dead_letters(worker):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, broker, proc = worker
    produce(broker, [(i, i % 3 + 1) for i in range(30)])          # 10 rides per vendor
    wait_for(lambda: table_value(base, 1) == 10, what="vendor 1 counted")

    with chromium(sync_api) as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        outside: list[str] = []
        page.on("request", lambda r: r.url.startswith(base) or outside.append(r.url))
        page.goto(base + "/")
        expect = sync_api.expect
        expect(page.locator("#state")).to_have_text("ready")
        expect(page.locator("#app")).to_have_text("dashapp")
        expect(page.locator("#agents tr[data-agent=count]")).to_contain_text("@count")
        expect(page.locator("#partitions tr")).to_have_count(3)
        expect(page.locator("#partitions .bar")).to_have_count(3)
        expect(page.locator("#dlq")).to_have_text("0")
        expect(page.locator("#dlq")).not_to_have_class("dlq bad")

        card = page.locator('[data-table="vendor_rides"]')
        expect(card.locator(".size")).to_contain_text("3 keys")
        card.locator("input").fill("1")
        card.locator("button").click()
        result = card.locator(".result")
        expect(result).to_have_text("1 → 10")

        # more rides for vendor 1 and two undecodable records: the page follows
        produce(broker, [(100 + i, 1) for i in range(5)], bad=2)
        expect(result).to_have_text("1 → 15", timeout=15_000)
        expect(page.locator("#dlq")).to_have_text("2", timeout=15_000)
        expect(page.locator("#dlq")).to_have_class("dlq bad")
        color = page.locator("#dlq").evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(209, 44, 44)"           # red
        expect(card.locator(".preview tr")).to_have_count(3)
        # the events/s sparkline per agent
        expect(page.locator("#agents svg.spark polyline")).to_have_count(1)

        card.locator("input").fill("42")
        card.locator("button").click()
        expect(result).to_contain_text("has no key '42'")
        card.locator("input").fill("1")
        card.locator("button").click()
        expect(result).to_have_text("1 → 15")

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        assert outside == [], f"the page loaded from elsewhere: {outside}"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


#: the course's taxi app as a user writes it: its topic, a group_by (a repartition topic
#: named after the app, the topic and the field), a table and a windowed table
TAXI_APP = textwrap.dedent('''
    from datetime import timedelta
    import streamkit

    class Ride(streamkit.Record, serializer="json"):
        id: int
        vendorId: int

    app = streamkit.App("taxi-dashboard", commit_interval=0.2, topic_partitions=3)
    rides = app.topic("yellow_taxi_ride.json", key_type=str, value_type=Ride)
    vendor_rides = app.Table("vendor_rides", default=int, help="rides per vendor")
    per_minute = app.Table("rides_per_vendor_per_minute", default=int).tumbling(
        timedelta(minutes=1), expires=timedelta(hours=1))

    @app.agent(rides)
    async def count_rides_by_vendor(stream):
        async for ride in stream.group_by(Ride.vendorId):
            vendor_rides[ride.vendorId] += 1
            per_minute[ride.vendorId] += 1

    if __name__ == "__main__":
        app.main()
''')

#: what the page shows that does not fit: a scrolling page or section, a topic name on
#: more than one line or cut short
LAYOUT_PROBLEMS = """() => {
  const problems = [], doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth)
    problems.push(`the page scrolls sideways: ${doc.scrollWidth} > ${doc.clientWidth}`);
  for (const el of document.querySelectorAll("main section, main section *")) {
    const style = getComputedStyle(el);
    if (!["auto", "scroll"].includes(style.overflowX)) continue;
    if (el.scrollWidth > el.clientWidth)
      problems.push(`scrollbar in ${el.id || el.className || el.tagName}: ` +
                    `${el.scrollWidth} > ${el.clientWidth}`);
  }
  for (const td of document.querySelectorAll(
      "#agents td.topics, #partitions td:first-child")) {
    const range = document.createRange(); range.selectNodeContents(td);
    const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    if (lines.size > 1) problems.push(`${td.textContent} on ${lines.size} lines`);
    if (td.scrollWidth > td.clientWidth) problems.push(`${td.textContent} cut short`);
  }
  return problems;
}"""


def test_dashboard_keeps_every_column_visible_from_1400_px(tmp_path):
    """At 1400, 1600 and 1920 px nothing scrolls sideways and every topic name is on one
    line, whole; at 1280 px a table may scroll inside its card, the page may not."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with worker_process(tmp_path, TAXI_APP, "taxi_dashboard") as (base, broker, proc):
        start = 1_593_561_600_000                     # 2020-07-01, ten minutes of rides
        produce(broker, [(i, i % 3 + 1) for i in range(60)], topic="yellow_taxi_ride.json",
                timestamps=[start + i * 10_000 for i in range(60)])
        wait_for(lambda: httpx.get(f"{base}/table/vendor_rides/1").status_code == 200,
                 what="rides counted")
        problems = {}
        with chromium(sync_api) as browser:
            for width in (1280, 1400, 1600, 1920):
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.goto(base + "/")
                expect = sync_api.expect
                expect(page.locator("#state")).to_have_text("ready")
                expect(page.locator("#partitions tr")).to_have_count(6)   # 3 + 3 repartition
                expect(page.locator(".preview tr")).not_to_have_count(0)
                expect(page.locator('[data-table="rides_per_vendor_per_minute"] .preview tr')
                       ).to_have_count(3)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"), full_page=True)
                found = page.evaluate(LAYOUT_PROBLEMS)
                if width < 1400:     # a table may scroll inside its card
                    found = [p for p in found if not p.startswith("scrollbar in")]
                problems[width] = found
                page.close()
        assert problems == {1280: [], 1400: [], 1600: [], 1920: []}
