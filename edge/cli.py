"""The argument parser every fer-* console script uses.

argparse reports a usage error as the whole usage block and then the error; with as many options as
``fer-train`` or ``fer-edge deploy`` have, the reason is the last of several lines. Every other bad
input here is one line on stderr, so usage errors are too, with a pointer to ``--help``. The exit
code stays argparse's 2, which is ``ExitStatus.BAD_INPUT``.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from edge.errors import ExitStatus


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line; sub-parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitStatus.BAD_INPUT), f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
