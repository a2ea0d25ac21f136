"""Exceptions the edge CLI maps to one-line messages and exit codes."""


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
