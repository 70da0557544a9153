"""The taxi-ride record and topic name the examples share."""
from __future__ import annotations

from datetime import datetime

import streamkit

#: the topic producer_taxi_json.py writes and the stream examples read
TOPIC = "yellow_taxi_ride.json"


class TaxiRide(streamkit.Record, serializer="json"):
    """One yellow-taxi trip (a subset of the CSV columns; see generate_rides.py)."""

    vendorId: int
    tpep_pickup_datetime: datetime
    tpep_dropoff_datetime: datetime
    passenger_count: int = 1
    trip_distance: float = 0.0
    PULocationID: int = 0
    DOLocationID: int = 0
    payment_type: int = 1
    fare_amount: float = 0.0
    tip_amount: float = 0.0
    total_amount: float = 0.0
