"""What fer-train, fer-convert and fer-bench set up before any work: TensorFlow's C++ logging turned down (and
the lines its libraries print while loading left out), and their own log lines on stderr under their own
name, nobody else's.

For console entry points only: library code leaves the process's logging and environment to its caller.
Nothing here imports tensorflow. Also the parser class of the command each of them runs when none is named.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import threading
from types import ModuleType
from typing import Any

from edge.cli import ArgumentParser, CurrentStderr

# TensorFlow's C++ logging keeps only FATAL at 3. A CPU-only run logs "failed call to cuInit: ... UNKNOWN
# ERROR (303)" at ERROR, and 2 keeps that; a real failure still surfaces as a Python exception.
TF_LOG_LEVEL = "3"
TF_LOG_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"

# What TensorFlow's libraries print while they load, before they read the variable (each of two libraries
# once, on a CPU-only machine): at level 3 they are left out of the first `import tensorflow`'s stderr, every
# other line of it passes. Another TensorFlow may word them otherwise: then they show, nothing worse.
TF_LOAD_LINES = (
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*"),
    re.compile(rb"I\d{4} [\d:.]+ +\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, "
               rb"GPU will not be used\."),
)


def quiet_tensorflow() -> None:
    """Before tensorflow is imported; a user's own TF_CPP_MIN_LOG_LEVEL wins (0 brings every line back).

    Importing tensorflow here would cost every command, `--help` included, seconds; the first import
    wherever it happens is filtered instead.
    """
    os.environ.setdefault(TF_LOG_VARIABLE, TF_LOG_LEVEL)
    if (os.environ[TF_LOG_VARIABLE] == TF_LOG_LEVEL and "tensorflow" not in sys.modules
            and not any(isinstance(finder, _QuietTensorflowImport) for finder in sys.meta_path)):
        sys.meta_path.insert(0, _QuietTensorflowImport())


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """Finds tensorflow as Python would, and has it loaded with TF_LOAD_LINES left out of stderr. It stays
    until tensorflow is loaded: a mere ``importlib.util.find_spec("tensorflow")`` (is it installed?) asks
    it too."""

    def __init__(self) -> None:
        self._asking = threading.local()  # set while this thread asks the other finders

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if name != "tensorflow" or getattr(self._asking, "now", False):
            return None
        self._asking.now = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._asking.now = False
        if spec is not None and spec.loader is not None and not isinstance(spec.loader, _QuietLoader):
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, finder: _QuietTensorflowImport) -> None:
        self.loader = loader
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        from edge.vision.backends import stderr_without

        module.__loader__ = self.loader  # the module's record names the real loader, as without us
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with contextlib.suppress(ValueError):  # loaded once: later imports find it in sys.modules
            sys.meta_path.remove(self.finder)
        with stderr_without(*TF_LOAD_LINES):
            self.loader.exec_module(module)


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
        self.help_command = command
