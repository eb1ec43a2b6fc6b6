"""Seconds spent per pipeline stage, for the JSON sidecar and the benchmark."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class StageTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def time(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}
