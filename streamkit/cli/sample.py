"""A deterministic taxi-ride sample in the shape of the NYC yellow-taxi trip CSV.

The same ``seed`` and ``rows`` always give the same rides, byte for byte, so tests and
docs can state exact counts. ``examples/generate_rides.py`` writes it to a file;
``streamkit demo`` makes it in memory.
"""
from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

#: the columns of the yellow-taxi trip records (2020 layout), in file order
COLUMNS = ["VendorID", "tpep_pickup_datetime", "tpep_dropoff_datetime", "passenger_count",
           "trip_distance", "RatecodeID", "store_and_fwd_flag", "PULocationID",
           "DOLocationID", "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount",
           "tolls_amount", "improvement_surcharge", "total_amount", "congestion_surcharge"]

START = datetime(2020, 7, 1, 0, 0, 0)
#: a few busy pick-up zones, so per-zone counts are interesting
ZONES = [48, 68, 79, 90, 100, 107, 132, 138, 140, 142, 161, 162, 163, 164, 170, 186,
         230, 234, 236, 237, 238, 239, 246, 249, 263]


def generate_rides(rows: int = 300, seed: int = 2020) -> Iterator[dict[str, str]]:
    """``rows`` rides as CSV-ready dicts, pick-up times rising over ~``rows/10`` minutes."""
    rng = random.Random(seed)
    pickup = START
    for _ in range(rows):
        pickup += timedelta(seconds=rng.randint(0, 12))
        distance = round(rng.lognormvariate(0.6, 0.8), 2)
        minutes = max(1.0, distance * rng.uniform(2.5, 5.0))
        dropoff = pickup + timedelta(seconds=round(minutes * 60))
        airport = rng.random() < 0.06
        ratecode = 2 if airport else 1
        fare = 52.0 if airport else round(2.5 + distance * 2.5 + minutes * 0.5, 1)
        payment = 1 if rng.random() < 0.7 else 2
        tip = round(fare * rng.choice([0.1, 0.15, 0.2, 0.25]), 2) if payment == 1 else 0.0
        tolls = 6.12 if airport and rng.random() < 0.5 else 0.0
        congestion = 2.5 if rng.random() < 0.6 else 0.0
        extra, mta, improvement = 0.5, 0.5, 0.3
        total = round(fare + extra + mta + tip + tolls + improvement + congestion, 2)
        yield {
            "VendorID": "1" if rng.random() < 0.42 else "2",
            "tpep_pickup_datetime": f"{pickup:%Y-%m-%d %H:%M:%S}",
            "tpep_dropoff_datetime": f"{dropoff:%Y-%m-%d %H:%M:%S}",
            "passenger_count": str(rng.choice([1, 1, 1, 1, 2, 2, 3, 5])),
            "trip_distance": f"{distance:.2f}",
            "RatecodeID": str(ratecode),
            "store_and_fwd_flag": "Y" if rng.random() < 0.02 else "N",
            "PULocationID": str(132 if airport else rng.choice(ZONES)),
            "DOLocationID": str(rng.choice(ZONES)),
            "payment_type": str(payment),
            "fare_amount": f"{fare:g}",
            "extra": f"{extra:g}", "mta_tax": f"{mta:g}", "tip_amount": f"{tip:g}",
            "tolls_amount": f"{tolls:g}", "improvement_surcharge": f"{improvement:g}",
            "total_amount": f"{total:g}", "congestion_surcharge": f"{congestion:g}",
        }


def sample_csv(rows: int = 300, seed: int = 2020) -> str:
    """The sample as CSV text with a header line."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(generate_rides(rows, seed))
    return out.getvalue()


def write_sample(path: str | Path, rows: int = 300, seed: int = 2020) -> Path:
    """Write the sample CSV to ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sample_csv(rows, seed))
    return path


def ride_json(row: dict[str, str]) -> dict[str, object]:
    """One CSV row as the JSON object the examples send (the fields of TaxiRide)."""
    return {
        "vendorId": int(row["VendorID"]),
        "tpep_pickup_datetime": row["tpep_pickup_datetime"],
        "tpep_dropoff_datetime": row["tpep_dropoff_datetime"],
        "passenger_count": int(row["passenger_count"]),
        "trip_distance": float(row["trip_distance"]),
        "PULocationID": int(row["PULocationID"]),
        "DOLocationID": int(row["DOLocationID"]),
        "payment_type": int(row["payment_type"]),
        "fare_amount": float(row["fare_amount"]),
        "tip_amount": float(row["tip_amount"]),
        "total_amount": float(row["total_amount"]),
    }


if __name__ == "__main__":      # python -m streamkit.cli.sample [PATH [ROWS [SEED]]]
    import sys
    target = write_sample(sys.argv[1] if len(sys.argv) > 1 else "data/rides.csv",
                          *(int(a) for a in sys.argv[2:4]))
    print(f"wrote {target}")
