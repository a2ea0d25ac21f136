"""Exceptions the converter CLI maps to one-line messages and exit codes."""


class ConvertError(Exception):
    """A conversion input the user can fix: model file, calibration data, output path, format name."""


class VerificationError(ConvertError):
    """An artifact that converted but does not behave like the float model."""
