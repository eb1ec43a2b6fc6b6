import threading
import time

from fervid._handoff import BytesQueue


def test_bytes_queue_holds_small_items_deep_and_one_big_item_alone():
    q, stop = BytesQueue(max_bytes=10, min_item_bytes=1), threading.Event()
    assert all(q.put(i, 3, stop) for i in range(3))  # 9 bytes: three small items wait together
    assert q.get() == 0 and q.get() == 1 and q.get() == 2  # in order
    assert q.put("big", 100, stop)  # an empty queue takes any item, however big

    blocked = threading.Event()

    def put_small() -> None:
        blocked.set()
        q.put("small", 1, stop)

    t = threading.Thread(target=put_small)
    t.start()
    blocked.wait()
    time.sleep(0.05)
    assert t.is_alive()  # no room while the big one waits
    assert q.get() == "big"
    t.join(timeout=2)
    assert not t.is_alive() and q.get() == "small"


def test_bytes_queue_put_gives_up_once_stopped():
    q, stop = BytesQueue(max_bytes=1, min_item_bytes=1), threading.Event()
    assert q.put("a", 1, stop)
    result = []
    t = threading.Thread(target=lambda: result.append(q.put("b", 1, stop)))
    t.start()
    time.sleep(0.05)
    stop.set()  # the consumer left: the producer must not wait forever
    t.join(timeout=2)
    assert result == [False] and q.get() == "a"


def test_replace_all_drops_what_waits_and_wakes_a_waiting_consumer():
    q, stop = BytesQueue(max_bytes=10, min_item_bytes=1), threading.Event()
    assert q.put("a", 3, stop) and q.put("b", 3, stop)
    q.replace_all("end")
    assert q.get() == "end"  # the waiting items are gone
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    time.sleep(0.05)
    assert t.is_alive()  # waiting on an empty queue
    q.replace_all("end")
    t.join(timeout=2)
    assert got == ["end"]
    assert q.put("big", 100, stop)  # the bytes held were reset: an item of any size fits again


def test_tiny_items_count_at_least_the_minimum_and_markers_nothing():
    q, stop = BytesQueue(max_bytes=100, min_item_bytes=40), threading.Event()
    assert q.put("a", 1, stop) and q.put("b", 1, stop)  # 80 counted
    blocked = threading.Thread(target=lambda: q.put("c", 1, stop))
    blocked.start()
    time.sleep(0.05)
    assert blocked.is_alive()  # a third would count 120 > 100, though its bytes are few
    assert q.put("end", 0, stop)  # a marker always goes in
    assert q.get() == "a"
    blocked.join(timeout=2)
    assert not blocked.is_alive() and [q.get() for _ in range(3)] == ["b", "end", "c"]
