"""Exceptions that the CLI turns into one-line messages and exit codes."""


class TrainError(Exception):
    """Base class: anything the user can fix by changing an input."""


class DataError(TrainError):
    """A data set that cannot be read: missing folder, corrupt image, malformed CSV row."""


class ConfigError(TrainError):
    """A config file or override that names an unknown key or has a wrong type."""
