"""Where the shipped model files are, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def models_dir() -> Path:
    try:
        return Path(str(resources.files("fervid.models")))
    except ModuleNotFoundError:  # running from a source tree that was never installed
        return Path(__file__).resolve().parent.parent / "models"
