"""Transactional producers SIGKILLed at random moments (sending, committing,
aborting) and restarted with the same transactional id: read_committed readers see
every transaction whole or not at all, every acknowledged commit, no acknowledged
abort, nothing twice (``txn_trial`` of tests/faults/txn_trials.py; ``tools/fault_run.py
--kind txn`` runs hundreds)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .txn_trials import txn_trial


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_transactions_are_all_or_nothing(tmp_path: Path, seed: int) -> None:
    result = txn_trial(tmp_path / "log", seed=seed, rounds=3)
    assert result.ok, result.report()
    assert result.acknowledged > 0
