"""Helpers (imported by test_examples.py and tests/cli) for the end-to-end example tests: run scripts as real processes on a temp datadir."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SAMPLE = EXAMPLES / "data" / "rides.csv"


def example_env(datadir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["STREAMKIT_DATADIR"] = str(datadir)
    env.pop("STREAMKIT_BROKER", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sample_rows() -> list[dict[str, str]]:
    with open(SAMPLE, newline="") as f:
        return list(csv.DictReader(f))


class Worker:
    """A worker process whose stdout/stderr go to files the test can poll."""

    def __init__(self, args: list[str], datadir: Path, cwd: Path | None = None) -> None:
        self.out_path = datadir / f"out-{time.monotonic_ns()}.txt"
        self.err_path = self.out_path.with_suffix(".err")
        self._out = open(self.out_path, "w")
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err,
                                     env=example_env(datadir), cwd=cwd or datadir)

    def output(self) -> str:
        return self.out_path.read_text()

    def errors(self) -> str:
        return self.err_path.read_text()

    def wait_for(self, predicate, timeout: float = 30.0) -> str:
        """Poll stdout until ``predicate(text)`` holds; fail with both streams if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output()
            if predicate(text):
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"worker output never matched (exit {self.proc.returncode}):\n"
                    f"stdout:\n{self.output()[-3000:]}\nstderr:\n{self.errors()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        self._err.close()
        return self.proc.returncode


def run_example(script: str, *args: str, datadir: Path, timeout: float = 60
                ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                          env=example_env(datadir), cwd=datadir, capture_output=True,
                          text=True, timeout=timeout)


def produce_sample(datadir: Path) -> None:
    done = run_example("producer_taxi_json.py", datadir=datadir)
    assert done.returncode == 0, done.stderr
    assert "sent 300 rides to yellow_taxi_ride.json" in done.stdout


