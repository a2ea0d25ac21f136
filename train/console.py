"""What fer-train, fer-convert and fer-bench set up before any work: TensorFlow's C++ logging turned down, and
their own log lines on stderr under their own name, nobody else's.

For console entry points only: library code leaves the process's logging and environment to its caller.
Nothing here imports tensorflow. Also the parser class of the command each of them runs when none is named.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NoReturn

from edge.cli import ArgumentParser, CurrentStderr
from edge.errors import ExitStatus

# TensorFlow's C++ logging keeps only FATAL at 3. A CPU-only run logs "failed call to cuInit: ... UNKNOWN
# ERROR (303)" at ERROR, and 2 keeps that; a real failure still surfaces as a Python exception. The lines TF
# prints while its libraries load ("All log messages before absl::InitializeLog() ...", "oneDNN custom
# operations are on", "Could not find cuda drivers") ignore the variable at any level (docs/training.md).
TF_LOG_LEVEL = "3"
TF_LOG_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"


def quiet_tensorflow() -> None:
    """Before tensorflow is imported; a user's own TF_CPP_MIN_LOG_LEVEL wins (0 brings every line back)."""
    os.environ.setdefault(TF_LOG_VARIABLE, TF_LOG_LEVEL)


def log_to_stderr(prog: str, *loggers: str) -> None:
    """INFO and up from ``prog``'s logger (and ``loggers``) as ``prog: message`` on stderr.

    Only ours get the handler: one on the root logger also printed TensorFlow's and tf2onnx's INFO lines
    ("Assets written to: /tmp/...", "Computed 0 values for constant folding") as if they were ours. Ours do
    not propagate: a library that logs through the root logger gives it a handler of its own (logging does,
    on a first ``logging.warning``), which would print each of our lines a second time.
    Calling it again (main() run twice in one process, as the tests do) replaces the handler.
    """
    formatter = logging.Formatter(f"{prog}: %(message)s")
    for name in (prog, *loggers):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "fer_console", False)]:
            logger.removeHandler(old)
        handler = logging.StreamHandler(CurrentStderr())
        handler.setFormatter(formatter)
        handler.fer_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class DefaultCommandParser(ArgumentParser):
    """The parser of the command that runs when none is named (``fer-train``'s train, ``fer-convert``'s convert,
    ``fer-bench``'s run). Its usage errors keep the tool's name but point at ``fer-train train --help``, which
    lists the options that went wrong: ``fer-train --help`` lists only the commands."""

    def __init__(self, *args: Any, command: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command = command

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitStatus.BAD_INPUT), f"{self.prog}: error: {message} (see '{self.prog} {self.command} --help')\n")
