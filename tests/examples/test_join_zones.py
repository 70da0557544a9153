"""examples/join_zones.py as a user runs it: rides already in the topic, a worker
started, the top pick-up zones printed with their names."""
from __future__ import annotations

import re
import sys
from collections import Counter

import pytest

from example_helpers import EXAMPLES, produce_sample, sample_rows

pytestmark = pytest.mark.slow

#: the names the example gives the sample's busiest zones (NYC's taxi zone lookup)
NAMES = {132: "JFK Airport (Queens)", 142: "Lincoln Square East (Manhattan)",
         138: "LaGuardia Airport (Queens)", 107: "Gramercy (Manhattan)",
         230: "Times Sq/Theatre District (Manhattan)"}


def test_join_zones_prints_the_top_pickup_zones_by_name(tmp_path, workers):
    produce_sample(tmp_path)       # the rides wait in the topic before the zones load
    counts = Counter(int(r["PULocationID"]) for r in sample_rows())
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:5]
    expected = ("top pick-up zones of 300 rides: "
                + ", ".join(f"{NAMES[location]}: {n}" for location, n in top))
    worker = workers([sys.executable, str(EXAMPLES / "join_zones.py"), "worker"], tmp_path)
    text = worker.wait_for(lambda t: "of 300 rides" in t)
    assert worker.stop() == 0, worker.errors()
    assert "zones: 265 loaded" in text
    assert re.findall(r"top pick-up zones of 300 rides: .*", text)[0] == expected
    assert "unknown zone" not in text
