"""Training side of fervid (needs the ``fervid[train]`` extra: torch). The runtime never imports this."""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    from fervid.errors import FervidError

    raise FervidError("training needs PyTorch: pip install 'fervid[train]' (on CPU: pip install torch==2.13.0)") from err
