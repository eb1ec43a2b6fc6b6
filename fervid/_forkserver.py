"""Where ``--jobs`` workers come from: a forkserver with fervid already imported.

Never forked from the main process: its other threads (the progress bar's monitor, ONNX
Runtime's pools) may hold locks at the moment of a fork, and a worker would inherit them locked
and hang. This module imports nothing heavy, so the server can be started first thing and import
fervid (about 0.2 s) while the main process does the same.
"""

from __future__ import annotations

import multiprocessing

PRELOAD = ["fervid.runner", "av"]  # av: the decoder imports it lazily (see fervid/video/decode.py)


def context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start() -> None:
    """Start the server now; the pool that comes later forks its workers from it."""
    context()
    from multiprocessing import forkserver

    forkserver.ensure_running()
