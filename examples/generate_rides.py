"""Write the deterministic taxi-ride sample: ``python examples/generate_rides.py``.

The rows follow the NYC yellow-taxi trip CSV (18 columns, VendorID ... congestion_surcharge).
The same --rows and --seed always give the same file, so its counts can be checked.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from streamkit.cli.sample import write_sample

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300, help="how many rides (300)")
    parser.add_argument("--seed", type=int, default=2020, help="random seed (2020)")
    parser.add_argument("--out", default=str(HERE / "data" / "rides.csv"),
                        help="where to write (examples/data/rides.csv)")
    args = parser.parse_args()
    path = write_sample(args.out, rows=args.rows, seed=args.seed)
    print(f"wrote {args.rows} rides to {path}")


if __name__ == "__main__":
    main()
