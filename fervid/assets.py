"""Where the shipped model files are, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def models_dir() -> Path:
    return Path(str(resources.files("fervid.models")))
