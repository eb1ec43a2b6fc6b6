"""fervid: faces, stable IDs and the 7 FER-2013 emotions, frame by frame, from any video ffmpeg reads."""

__version__ = "0.1.0"

__all__ = ["__version__", "analyze"]


def analyze(path, **kwargs):
    """One row per face per analysed frame as a pandas DataFrame; see :func:`fervid.api.analyze`."""
    from fervid.api import analyze as _analyze

    return _analyze(path, **kwargs)
