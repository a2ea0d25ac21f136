"""The argument parser every fer-* console script uses.

argparse reports a usage error as the whole usage block and then the error; with as many options as
``fer-train`` or ``fer-edge deploy`` have, the reason is the last of several lines. Every other bad
input here is one line on stderr, so usage errors are too, with a pointer to ``--help``. The exit
code stays argparse's 2, which is ``ExitStatus.BAD_INPUT``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from edge.errors import EdgeError, ExitStatus


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line; sub-parsers inherit it."""

    help_command = ""  # what goes between prog and --help in the hint: the command whose options these are

    def error(self, message: str) -> NoReturn:
        command = f"{self.prog} {self.help_command}".strip()
        self.exit(int(ExitStatus.BAD_INPUT), f"{self.prog}: error: {message} (see '{command} --help')\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", SubcommandParser)
        return super().add_subparsers(**kwargs)


class SubcommandParser(ArgumentParser):
    """A subcommand's parser (``fer-edge detect``). argparse hands a subcommand's unknown options to
    the top parser, whose error then points at ``fer-edge --help``, which does not list the
    subcommand's options; here they are the subcommand's own error, pointing at its ``--help``."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def package_version(distribution: str = "fer-edge") -> str:
    """The installed distribution's version, for ``--version``; a copy run from a checkout without
    ``pip install`` has none to read, which it says rather than failing."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e . in the checkout)"


def commands_parser(prog: str, description: str, commands: Mapping[str, str],
                    default: str | None = None) -> ArgumentParser:
    """What ``fer-X --help`` prints: the subcommands, one line each (``fer-X COMMAND --help`` has the rest).

    All four console scripts share this shape. ``default`` is the command that runs when none is
    named (``fer-train --out run`` trains, ``fer-bench --quick`` runs), so every invocation written
    before the subcommands were listed keeps working.
    """
    epilog = f"'{prog} COMMAND --help' shows a command's options."
    if default:
        epilog += f" Without a command, {prog} runs '{default}'."
    parser = ArgumentParser(prog=prog, description=description, epilog=epilog)
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name, text in commands.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def report_edge_errors(work: Callable[[], object]) -> int:
    """Run a helper script's ``work``: an ``EdgeError`` becomes ``error: MESSAGE`` on stderr and exit code 1.

    The clip builders (``python -m edge.demo_clip``, ``python -m edge.tilted_clip``) report this way.
    """
    try:
        work()
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    return ExitStatus.OK


def quiet_closed_stdout() -> None:
    """Point fd 1 at /dev/null once stdout's reader has left (``fer-edge ... | head``).

    Whatever print() could not write stays in Python's buffer, and the interpreter's last flush
    would otherwise report "Exception ignored ... BrokenPipeError" on the way out.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real fd 1 (a test's captured stdout): nothing to flush there
        pass


class CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is logged, for the CLIs' log handlers. A handler outlives
    the main() that made it and would otherwise keep the stream of that moment: run inside a process
    that later replaces or closes sys.stderr (a test runner's capture), every later line, from any
    thread still logging, would go to a closed file as a "Logging error" traceback."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
