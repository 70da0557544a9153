"""Enrich taxi rides with the name of their pick-up zone (a stream-table join), and
print the top pick-up zones:

    python examples/join_zones.py worker          # in one terminal
    python examples/producer_taxi_json.py         # in another

The zone lookup (LocationID, Borough, Zone; 265 zones as in NYC's taxi zone table,
the busy ones with their real names) is generated here: when the worker is ready,
``send_zones`` writes it to the compacted topic ``taxi_zones``, keyed by LocationID,
and the agent ``load_zones`` keeps the ``zones`` GlobalTable up to date from it. The
agent ``enrich`` joins each ride to its zone with
``stream.join(zones, on=TaxiRide.PULocationID, how="left")`` and counts pick-ups per
zone in the table ``pickups``; a timer prints the top five.
"""
from __future__ import annotations

import anyio

import streamkit
from taxi import TOPIC, TaxiRide

app = streamkit.App("taxi-zones", broker="log://", web_enabled=False)


class Zone(streamkit.Record, serializer="json"):
    """One row of the taxi zone lookup."""

    LocationID: int
    Borough: str
    Zone: str


#: the zones the sample rides use most, with their names in NYC's lookup table
NAMED = {
    1: ("EWR", "Newark Airport"), 48: ("Manhattan", "Clinton East"),
    68: ("Manhattan", "East Chelsea"), 79: ("Manhattan", "East Village"),
    90: ("Manhattan", "Flatiron"), 100: ("Manhattan", "Garment District"),
    107: ("Manhattan", "Gramercy"), 132: ("Queens", "JFK Airport"),
    138: ("Queens", "LaGuardia Airport"), 140: ("Manhattan", "Lenox Hill East"),
    142: ("Manhattan", "Lincoln Square East"), 161: ("Manhattan", "Midtown Center"),
    162: ("Manhattan", "Midtown East"), 163: ("Manhattan", "Midtown North"),
    164: ("Manhattan", "Midtown South"), 170: ("Manhattan", "Murray Hill"),
    186: ("Manhattan", "Penn Station/Madison Sq West"),
    230: ("Manhattan", "Times Sq/Theatre District"), 234: ("Manhattan", "Union Sq"),
    236: ("Manhattan", "Upper East Side North"),
    237: ("Manhattan", "Upper East Side South"),
    238: ("Manhattan", "Upper West Side North"),
    239: ("Manhattan", "Upper West Side South"),
    246: ("Manhattan", "West Chelsea/Hudson Yards"), 249: ("Manhattan", "West Village"),
    263: ("Manhattan", "Yorkville West"), 264: ("Unknown", "NV"), 265: ("Unknown", "NA"),
}
BOROUGHS = ("Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island")


def zone_lookup() -> list[Zone]:
    """The 265 zones: the named ones above, the others "Zone <id>" in a borough."""
    return [Zone(LocationID=i, Borough=NAMED[i][0], Zone=NAMED[i][1]) if i in NAMED
            else Zone(LocationID=i, Borough=BOROUGHS[i % len(BOROUGHS)], Zone=f"Zone {i}")
            for i in range(1, 266)]


ZONES = zone_lookup()
rides = app.topic(TOPIC, key_type=str, value_type=TaxiRide)
zone_updates = app.topic("taxi_zones", key_type=int, value_type=Zone, compacting=True)
zones = app.GlobalTable("zones", key_type=int, value_type=Zone, help="LocationID -> Zone")
pickups = app.Table("pickups", key_type=int, default=int, help="rides per pick-up zone")
#: LocationIDs load_zones has put in the table since the worker started
loaded: set[int] = set()


@app.task
async def send_zones():
    """Write the zone lookup to its topic (keyed, so sending it again changes nothing)."""
    for zone in ZONES:
        await zone_updates.send(key=zone.LocationID, value=zone)


@app.agent(zone_updates)
async def load_zones(stream):
    async for location, zone in stream.items():
        zones[location] = zone
        loaded.add(location)
        if len(loaded) == len(ZONES):
            print(f"zones: {len(loaded)} loaded", flush=True)


@app.agent(rides)
async def enrich(stream):
    """Count the rides per pick-up zone, with the zone's name."""
    # group_by first (a partitioned table counts each zone in one partition), then
    # look every ride's zone up in the global table
    joined = stream.group_by(TaxiRide.PULocationID, name="pickup_zone").join(
        zones, on=TaxiRide.PULocationID, how="left")
    # rides may be waiting already: enrich them only once the lookup is complete
    while len(loaded) < len(ZONES):  # noqa: ASYNC110 (a plain poll, once at start)
        await anyio.sleep(0.05)
    async for ride, zone in joined:
        pickups[ride.PULocationID] += 1
        if zone is None:
            print(f"ride from unknown zone {ride.PULocationID}", flush=True)


def top_zones(n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` zones with most pick-ups: ("Zone (Borough)", rides)."""
    counts = sorted(pickups.items(), key=lambda item: (-item[1], item[0]))[:n]
    named = []
    for location, count in counts:
        zone = zones.get(location)
        named.append((f"{zone.Zone} ({zone.Borough})" if zone else f"#{location}", count))
    return named


@app.timer(interval=2.0)
async def report():
    total = sum(pickups.values())
    if total:
        top = ", ".join(f"{name}: {count}" for name, count in top_zones())
        print(f"top pick-up zones of {total} rides: {top}", flush=True)


if __name__ == "__main__":
    app.main()
