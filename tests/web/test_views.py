"""``@app.page`` views the Faust way (``(web, request)`` functions and
``streamkit.web.View`` classes), served by a real running worker over HTTP."""
from __future__ import annotations

import pytest

import streamkit
import streamkit as faust      # the name a Faust script uses

from .conftest import eventually, new_app, running_worker

pytestmark = pytest.mark.anyio


class Ride(streamkit.Record, serializer="json"):
    vendorId: int


def ride_counting_app(tmp_path):
    """Counts rides per vendor; the views below read the table and send rides."""
    app = new_app("webviews", tmp_path)
    rides = app.topic("rides", key_type=str, value_type=Ride)
    vendor_rides = app.Table("vendor_rides", default=int, key_type=int)

    @app.agent(rides)
    async def count(stream):
        async for ride in stream.group_by(Ride.vendorId):
            vendor_rides[ride.vendorId] += 1

    return app, rides, vendor_rides


async def test_faust_function_views_get_the_view_and_the_request(tmp_path):
    app, rides, vendor_rides = ride_counting_app(tmp_path)

    @app.page("/counts/")
    async def counts(web, request):
        limit = int(request.query.get("limit", "100"))
        return web.json({"vendors": sorted(vendor_rides.keys())[:limit],
                         "tags": request.query.getall("tag", [])})

    @app.page("/counts/{vendor}/")
    async def one_count(web, request, vendor):
        if int(vendor) not in vendor_rides:
            raise web.NotFound(f"no rides of vendor {vendor}", vendor=vendor)
        return web.json({"vendor": int(vendor), "rides": vendor_rides[int(vendor)]})

    @app.page("/hello")
    async def hello(web, request):
        return web.text(f"hello {request.query['name']}")

    @app.page("/rides/")
    class SendRide(faust.web.View):
        @faust.web.takes_model(Ride)
        @faust.web.gives_model(Ride)
        async def post(self, request, ride):
            await rides.send(key=str(ride.vendorId), value=ride)
            return ride

    async with running_worker(app) as client:
        for vendor in (1, 2, 2, 3):
            await rides.send(key=str(vendor), value=Ride(vendorId=vendor))

        async def counted():
            return (await client.get("/counts/2/")).json().get("rides") == 2
        await eventually(counted, what="rides counted")

        answer = await client.get("/counts/", params=[("limit", "2"), ("tag", "a"),
                                                      ("tag", "b")])
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"vendors": [1, 2], "tags": ["a", "b"]}
        missing = await client.get("/counts/7/")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no rides of vendor 7", "vendor": "7"}
        text = await client.get("/hello", params=[("name", "ada"), ("name", "bob")])
        assert text.headers["content-type"].startswith("text/plain")
        assert text.text == "hello ada"          # the first value, as aiohttp's query
        sent = await client.post("/rides/", json={"vendorId": 3})
        assert sent.status_code == 200 and sent.json() == {"vendorId": 3}
        invalid = await client.post("/rides/", json={"vendorId": "three"})
        assert invalid.status_code == 400 and "vendorId" in invalid.json()["error"]

        async def counted_again():
            return (await client.get("/counts/3/")).json().get("rides") == 2
        await eventually(counted_again, what="the ride sent by the view counted")
        # a view defines GET only: the other methods are refused
        refused = await client.post("/counts/")
        assert refused.status_code == 405
        assert (await client.head("/counts/")).status_code == 200


class Notes(faust.web.View):
    """A class-based view with a method per HTTP verb and a URL parameter."""

    def __post_init__(self) -> None:
        self.notes: dict[str, object] = {}

    async def get(self, request, key):
        if key not in self.notes:
            raise self.NotFound()
        return self.json({"key": key, "note": self.notes[key]})

    async def post(self, request, key):
        if key in self.notes:
            return self.error(409, f"{key} exists")
        self.notes[key] = await request.json()
        return self.json({"created": key}, status=201, headers={"Location": f"/notes/{key}"})

    async def put(self, request, key):
        self.notes[key] = (await request.post())["note"]
        return self.text("", status=204)

    async def delete(self, request, key):
        self.notes.pop(key, None)
        return self.bytes(b"\x00gone", content_type="application/x-gone")


async def test_class_based_views_route_each_method_with_url_parameters(tmp_path):
    app, _, _ = ride_counting_app(tmp_path)
    assert app.page("/notes/{key}")(Notes) is Notes

    async with running_worker(app) as client:
        assert (await client.get("/notes/a")).json() == {"error": "Not found."}
        created = await client.post("/notes/a", json={"text": "first", "n": [1, 2]})
        assert created.status_code == 201
        assert created.headers["location"] == "/notes/a"
        assert created.json() == {"created": "a"}
        again = await client.post("/notes/a", json={})
        assert again.status_code == 409 and again.json() == {"error": "a exists"}
        got = await client.get("/notes/a")
        assert got.status_code == 200
        assert got.json() == {"key": "a", "note": {"text": "first", "n": [1, 2]}}

        replaced = await client.put("/notes/a", data={"note": "second"})
        assert replaced.status_code == 204
        assert (await client.get("/notes/a")).json()["note"] == "second"

        bad = await client.post("/notes/b", content=b"{not json",
                                headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("request body is not JSON")

        gone = await client.delete("/notes/a")
        assert gone.status_code == 200 and gone.content == b"\x00gone"
        assert gone.headers["content-type"] == "application/x-gone"
        assert (await client.get("/notes/a")).status_code == 404
        assert (await client.patch("/notes/a")).status_code == 405      # not defined
        status = (await client.get("/api/status")).json()
        assert status["pages"] == ["/notes/{key}"]


async def test_a_view_that_raises_answers_500_and_the_server_goes_on(tmp_path):
    app, _, _ = ride_counting_app(tmp_path)

    @app.page("/broken/")
    class Broken(faust.web.View):
        async def get(self, request):
            raise RuntimeError("no luck")

    async with running_worker(app) as client:
        failing = await client.get("/broken/")
        assert failing.status_code == 500
        assert failing.json()["error"] == "page /broken/ raised RuntimeError: no luck"
        assert (await client.get("/healthz")).status_code == 200


def test_a_class_page_must_be_a_view(tmp_path):
    app, _, _ = ride_counting_app(tmp_path)

    class NotAView:
        async def get(self, request):
            return {}

    with pytest.raises(TypeError, match="subclass of streamkit.web.View"):
        app.page("/x")(NotAView)
