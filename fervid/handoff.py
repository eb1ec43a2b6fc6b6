"""Hand items between threads through bounded queues without ever blocking on a consumer that left."""

from __future__ import annotations

import queue
import threading


def put_unless_stopped(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put ``item``, waiting while the queue is full; give up (False) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False
