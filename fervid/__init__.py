"""fervid: faces, stable IDs and the 7 FER-2013 emotions, frame by frame, from any video ffmpeg reads."""

__version__ = "0.1.0"
