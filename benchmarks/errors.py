"""Exceptions fer-bench maps to a one-line ``fer-bench: error: ...`` and exit code 2."""


class BenchError(Exception):
    """Something the user can fix: a path, an artifact name, a malformed results file."""


class PeerUnavailable(BenchError):
    """The `fer` peer cannot run here; the reason goes into the report instead of a figure."""


class FacesUnavailable(BenchError):
    """The ``train`` package is missing (an edge-only install): accuracy is left out with a note,
    where any other reason labelled faces cannot be loaded is the user's to fix before timing."""
