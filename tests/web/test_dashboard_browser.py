"""The dashboard in headless Chromium (Debian's package) driven by Playwright, against a
worker running as its own process on an embedded log in tmp."""
from __future__ import annotations

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


def produce(broker: str, rides: list[tuple[int, int]], bad: int = 0) -> None:
    producer = streamkit.Producer(broker=broker, default_partitions=3)
    for ride_id, vendor in rides:
        producer.send("rides", key=str(vendor),
                      value=json.dumps({"id": ride_id, "vendorId": vendor}))
    for _ in range(bad):
        producer.send("rides", key="1", value=b"{not json")
    producer.flush()
    producer.close()


@pytest.fixture
def worker(tmp_path):
    """A ``python app.py worker --web-port N`` process; yields (base url, broker url)."""
    app_file = tmp_path / "dashapp.py"
    app_file.write_text(APP)
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


def table_value(base: str, key: int):
    response = httpx.get(f"{base}/table/vendor_rides/{key}")
    return response.json()["value"] if response.status_code == 200 else None


def test_dashboard_shows_a_table_value_change_and_dead_letters(worker):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, broker, proc = worker
    produce(broker, [(i, i % 3 + 1) for i in range(30)])          # 10 rides per vendor
    wait_for(lambda: table_value(base, 1) == 10, what="vendor 1 counted")

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
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
        finally:
            browser.close()

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
