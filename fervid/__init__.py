"""fervid: faces, stable IDs and the 7 FER-2013 emotions, frame by frame, from any video ffmpeg reads.

The public API is what this module exports: :func:`analyze`, :class:`Session` (the networks
loaded once for many videos), :class:`Settings` (with :class:`DetectorSettings`),
:data:`EMOTIONS`, and the exceptions in :mod:`fervid.errors`.
"""

from fervid.api import Session, analyze
from fervid.errors import FervidError, ModelError, OutputError, SettingsError, VideoError
from fervid.labels import EMOTIONS
from fervid.settings import DetectorSettings, Settings

__version__ = "0.2.0"

__all__ = ["__version__", "analyze", "Session", "Settings", "DetectorSettings", "EMOTIONS", "FervidError",
           "ModelError", "OutputError", "SettingsError", "VideoError"]
