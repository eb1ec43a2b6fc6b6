"""Writing ONNX model files: metadata in, saved atomically. Needs the onnx package (train or test extra)."""

from __future__ import annotations

import os
from pathlib import Path


def save_with_metadata(proto, out: str | os.PathLike, metadata: dict, *, keep: bool = False) -> Path:
    """Set ``metadata`` in ``metadata_props`` (dropping the rest unless ``keep``) and save to ``out``
    under a temporary name first, so that a half-written model never stands at ``out``."""
    import onnx

    out = Path(out)
    props = {p.key: p.value for p in proto.metadata_props} if keep else {}
    props.update({k: str(v) for k, v in metadata.items()})
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    return out
