"""Making and scoring models: datasets, training, export, derived models, evaluation, explanations.

The runtime (annotate, timeline, :func:`fervid.analyze`) never imports this package. Training,
export and explanations need PyTorch, and writing model files needs onnx (both in the
``fervid[train]`` extra); :func:`require` turns their absence into a message, not a traceback.
"""

from __future__ import annotations

import importlib

from fervid.errors import FervidError


def require(*modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as err:  # pragma: no cover - depends on the environment
            hint = " (on a CPU machine: pip install torch==2.13.0 first)" if name == "torch" else ""
            raise FervidError(f"this needs {name}: pip install 'fervid[train]'{hint}") from err
