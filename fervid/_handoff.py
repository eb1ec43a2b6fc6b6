"""Hand items between threads through bounded queues without ever blocking on a consumer that left."""

from __future__ import annotations

import threading
from collections import deque


class BytesQueue:
    """A queue bounded by the bytes its items hold, not by their count; one item always fits.

    Stretches of frames differ a hundredfold in size (five 1080p frames: 15 MB; five 480x480
    ones: 1.7 MB). Bounded by count, small frames get too shallow a queue, and the two threads
    wait on each other; bounded by bytes, small frames queue deeper while big ones keep memory flat.
    An item counts at least ``min_item_bytes`` (markers, put with 0 bytes, count nothing): a
    16x16 video's frames would otherwise queue by the ten thousand, their Python objects
    outweighing their pixels."""

    def __init__(self, max_bytes: int, min_item_bytes: int = 64 << 10):
        self.max_bytes = max_bytes
        self.min_item_bytes = min_item_bytes
        self._items: deque = deque()
        self._bytes = 0
        self._cond = threading.Condition()

    def put(self, item, nbytes: int, stop: threading.Event) -> bool:
        """Put ``item``, waiting while it does not fit; give up (False) once ``stop`` is set."""
        nbytes = max(nbytes, self.min_item_bytes) if nbytes else 0
        with self._cond:
            while self._items and self._bytes + nbytes > self.max_bytes and not stop.is_set():
                self._cond.wait(0.2)
            if stop.is_set():
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self._cond.notify_all()
            return True

    def offer(self, item, nbytes: int) -> bool:
        """Put ``item`` only if it fits now (a live source drops what analysis has no time for)."""
        nbytes = max(nbytes, self.min_item_bytes) if nbytes else 0
        with self._cond:
            if self._items and self._bytes + nbytes > self.max_bytes:
                return False
            self._items.append((item, nbytes))
            self._bytes += nbytes
            self._cond.notify_all()
            return True

    def get(self):
        with self._cond:
            while not self._items:
                self._cond.wait()
            item, nbytes = self._items.popleft()
            self._bytes -= nbytes
            self._cond.notify_all()
            return item

    def replace_all(self, item) -> None:
        """Drop everything waiting and leave ``item`` alone in the queue; wakes a waiting consumer."""
        with self._cond:
            self._items.clear()
            self._items.append((item, 0))
            self._bytes = 0
            self._cond.notify_all()
