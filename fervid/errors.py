"""Exceptions whose message is meant for the user; the CLI turns them into exit codes."""


class FervidError(Exception):
    """Base class: ``str(err)`` is a complete, user-facing sentence."""


class DataError(FervidError):
    """A dataset file is missing or malformed."""


class ModelError(FervidError):
    """A model file is missing or breaks the model contract."""


class VideoError(FervidError):
    """A video cannot be probed, decoded or written."""


class OutputError(FervidError):
    """An output cannot be written where the user asked."""


class SettingsError(FervidError, ValueError):
    """A setting is out of its range or of the wrong kind (a ValueError to library callers)."""
