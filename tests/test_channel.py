from __future__ import annotations

import threading
import time

import pytest

from vidstream.channel import Channel, ChannelAborted, EndOfStream


def test_items_then_end_of_stream():
    ch = Channel(4)
    for i in range(3):
        ch.put(i)
    ch.close()
    assert [ch.get(), ch.get(), ch.get()] == [0, 1, 2]
    with pytest.raises(EndOfStream):
        ch.get()


def test_put_blocks_while_full_until_a_get():
    ch = Channel(2)
    ch.put(1)
    ch.put(2)
    done = threading.Event()

    def producer():
        ch.put(3)
        done.set()

    t = threading.Thread(target=producer)
    t.start()
    assert not done.wait(0.2), "put() must block while the channel is full"
    assert len(ch) == 2
    assert ch.get() == 1
    assert done.wait(2)
    t.join()
    assert len(ch) == 2


def test_abort_wakes_blocked_producer_and_consumer():
    full, empty = Channel(1), Channel(1)
    full.put(0)
    errors = []

    def put():
        try:
            full.put(1)
        except ChannelAborted:
            errors.append("put")

    def get():
        try:
            empty.get()
        except ChannelAborted:
            errors.append("get")

    threads = [threading.Thread(target=put), threading.Thread(target=get)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    full.abort()
    empty.abort()
    for t in threads:
        t.join(2)
    assert sorted(errors) == ["get", "put"]


def test_leaky_channel_drops_oldest_and_counts():
    ch = Channel(3, leaky=True)
    dropped = []
    ch.on_drop = dropped.append
    for i in range(10):
        ch.put(i)  # never blocks
    assert ch.dropped == 7
    assert dropped == list(range(7))
    ch.close()
    assert [ch.get() for _ in range(3)] == [7, 8, 9]


def test_get_batch_waits_for_full_batch_or_end():
    ch = Channel(8)
    for i in range(5):
        ch.put(i)
    assert ch.get_batch(4) == [0, 1, 2, 3]
    ch.close()
    assert ch.get_batch(4) == [4]  # end of stream: a short last batch
    with pytest.raises(EndOfStream):
        ch.get_batch(4)


def test_get_batch_linger_zero_takes_what_is_there():
    ch = Channel(8)
    ch.put("a")
    assert ch.get_batch(4, linger=0) == ["a"]


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity"):
        Channel(0)
