"""Faust's table URLs, with their trailing slashes, against a real worker over HTTP."""
from __future__ import annotations

import pytest

from .test_http import counting_app, processed, produce, vendors
from .conftest import running_worker

pytestmark = pytest.mark.anyio


async def test_faust_trailing_slashes_list_a_table_and_read_a_key(tmp_path):
    app = counting_app(tmp_path)
    async with running_worker(app) as client:
        produce(app, vendors(50))
        await processed(client, 50)
        plain = await client.get("/table/by_vendor")
        slashed = await client.get("/table/by_vendor/")
        assert slashed.status_code == 200, slashed.text
        assert slashed.json() == plain.json()
        assert [i["key"] for i in slashed.json()["items"]] == [1, 2, 3, 4, 5]
        paged = await client.get("/table/by_vendor/", params={"limit": 2})
        assert [i["key"] for i in paged.json()["items"]] == [1, 2]
        one = await client.get("/table/by_vendor/3/")
        assert one.status_code == 200, one.text
        assert one.json() == {"table": "by_vendor", "key": 3, "value": 10}
        named = await client.get("/table/by_name/vendor-3/")
        assert named.json() == {"table": "by_name", "key": "vendor-3", "value": 10}
        listing = await client.get("/table/")
        assert listing.status_code == 200
        assert {"name": "by_vendor", "help": "rides per vendor"} in listing.json()  # Faust's
        assert {"by_vendor", "by_name"} <= {t["name"] for t in listing.json()}
        assert (await client.get("/table/nope/")).status_code == 404
