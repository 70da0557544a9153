"""A failed send is reported once: to whoever asked for it, else in the log."""
from __future__ import annotations

import gc

import pytest

import streamkit
from streamkit.errors import InvalidTopicName


def test_a_failed_send_raises_from_get_and_is_not_logged_again(caplog):
    producer = streamkit.Producer(broker="memory://send-errors")
    future = producer.send("bad/name", value=b"x")
    with pytest.raises(InvalidTopicName):
        future.get(timeout=1)
    del future
    gc.collect()
    assert "send failed" not in caplog.text
    producer.close()


def test_a_failed_send_nobody_asked_about_is_logged(caplog):
    producer = streamkit.Producer(broker="memory://send-errors")
    producer.send("bad/name", value=b"x")
    producer.flush()
    gc.collect()
    assert "send failed" in caplog.text and "bad/name" in caplog.text
    producer.close()
