"""Batches on a Ray cluster: one video is one unit of work, run by the same per-file runner as a
local batch, on a pool of actors that each load the networks once.

Split: the driver (this process) starts the pool, plans every output name, decides what to skip
or refuse, and hands each remaining video to the pool; actors pick videos as they free up, so
long and short videos balance themselves. Retried: an actor whose process or node dies is restarted (on another
node when its own is gone) and the video it held is run again from the start; its part files
are locked by the dead process no more, so the rerun removes them, and only the rename at the
end makes outputs visible (on a store, the upload of each whole file): a video's outputs are
written once, complete. Gathered: results come back as small records; the outputs themselves
are on the shared filesystem or the store that every node reaches.

Ray is the ``ray`` extra; nothing in the local path imports this module.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable

from tqdm import tqdm

from fervid.batch import BatchReport, Job, settle_one, triage
from fervid.errors import FervidError
from fervid.settings import Settings

RETRIES = 3  # runs of one video after its actor or node died, before it fails


class RayMissingError(FervidError):
    """``--ray`` without Ray installed."""


def connect(address: str | None):
    """Join the cluster at ``address``, or the one ``RAY_ADDRESS`` or a running ``ray start``
    names; else start a local one that listens on loopback only (Ray has no authentication)."""
    try:
        import ray
    except ImportError:
        raise RayMissingError("--ray needs Ray: pip install 'fervid[ray]'") from None
    if ray.is_initialized():
        return ray
    kwargs = {"log_to_driver": False, "logging_level": "warning"}
    if address:
        ray.init(address=address, **kwargs)
        return ray
    try:
        ray.init(address="auto", **kwargs)
    except (ConnectionError, RuntimeError, ValueError):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, **kwargs)
    return ray


def run_on_ray(jobs: list[Job], settings: Settings, address: str | None = None, overwrite: bool = False,
               progress: bool = True, verbose: bool = False,
               on_event: Callable[[str], None] = print) -> BatchReport:
    ray = connect(address)
    # The actors start (a Ray worker boots, then loads the networks: about a second) while this
    # process decides what to skip, which on a store means a few requests a video.
    worker_settings = dataclasses.replace(settings, threads=settings.threads or 1)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actor = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=RETRIES)(_Worker)
    pool = [actor.remote(worker_settings) for _ in range(max(1, min(cpus, len(jobs))))]
    report = BatchReport()
    pending: dict = {}
    bar = None
    try:
        todo = triage(jobs, overwrite, report, on_event)
        idle = pool[:len(todo)]
        queue = list(todo)
        bar = tqdm(total=len(todo), unit="video", desc="videos", disable=not progress or not todo)
        frames, started = 0, time.time()
        while queue or pending:
            while queue and idle:
                job, worker = queue.pop(0), idle.pop()
                pending[worker.process.remote(job)] = (job, worker)
            done, _ = ray.wait(list(pending), num_returns=1)
            job, worker = pending.pop(done[0])
            idle.append(worker)
            res = settle_one(report, job, lambda ref=done[0]: _fetch(ray, ref), progress, verbose, on_event)
            frames += res.frames if res else 0
            bar.update(1)
            bar.set_postfix_str(f"{frames / max(time.time() - started, 1e-6):.0f} frames/s")
    except KeyboardInterrupt:
        # The videos at work are interrupted as Ctrl-C interrupts a local run: their part files
        # are removed; then the actors go.
        for ref in pending:
            ray.cancel(ref)
        ray.wait(list(pending), num_returns=len(pending), timeout=10)
        raise
    finally:
        if bar is not None:
            bar.close()
        for worker in pool:
            ray.kill(worker)
    return report


def _fetch(ray, ref):
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:  # the video's own failure, as a local run reports it
        raise err.cause if isinstance(err.cause, Exception) else err from None
    except ray.exceptions.RayActorError as err:
        raise FervidError(f"the worker running this video died {RETRIES + 1} times ({type(err).__name__})") from None


class _Worker:
    """A Ray actor: the networks loaded once, then one video per call."""

    def __init__(self, settings: Settings):
        from fervid.analysis.pipeline import Models

        self.settings, self.models = settings, Models.load(settings)

    def process(self, job: Job):
        from fervid.batch import run_job

        return run_job(job, self.settings, progress=False, models=self.models)
