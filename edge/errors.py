"""Exceptions the edge CLI maps to one-line messages and exit codes, and those codes.

The codes are shared by every console script (train depends on edge, never the reverse), so a
supervisor or a shell script reads them the same way everywhere: 2 means fix the input.
"""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


class EdgeError(Exception):
    """Base class: something the user can fix (a path, a config value, a model file)."""


class ManifestError(EdgeError):
    """A manifest that is missing, malformed, or does not match its artifacts."""


class ModelLoadError(EdgeError):
    """An artifact that cannot be loaded by any available runtime."""


class ConfigError(EdgeError):
    """An edge config with an unknown key, a wrong type or an impossible value."""


class SourceError(EdgeError):
    """A frame source that cannot be opened or read."""


class SourceNotInstalled(SourceError):
    """A source whose library is missing: no retry brings it, so the daemon stops at start instead."""
