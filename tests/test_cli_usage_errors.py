"""A usage error from any console script is one line naming the tool and the problem, exit code 2.

argparse's default prints the whole usage block first; these fail on that.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.edge_helpers import ROOT

CASES = [
    ("edge", ["run", "--bogus"], "fer-edge run", "--bogus"),  # the subcommand's --help lists its options
    ("edge", ["detect", "img.jpg", "--foo", "2"], "fer-edge detect", "unrecognized arguments: --foo 2"),
    ("edge", ["--bogus", "run"], "fer-edge", "--bogus"),
    ("edge", [], "fer-edge", "COMMAND"),
    ("edge", ["deploy"], "fer-edge deploy", "target"),
    ("edge", ["run", "--threads", "many"], "fer-edge run", "--threads"),
    ("train", ["--epochs", "abc", "--out", "x"], "fer-train", "--epochs"),
    ("train", ["evaluate"], "fer-train evaluate", "model"),
    ("train", ["evaluate", "m.keras", "--views", "3"], "fer-train evaluate", "--views"),
    ("train", ["ship"], "fer-train ship", "run_dir"),
    ("train", ["report", "data", "--test-fraction", "x"], "fer-train report", "--test-fraction"),
    ("convert", [], "fer-convert", "model"),
    ("convert", ["verify"], "fer-convert verify", "manifest"),
    ("benchmarks", ["run", "--threads", "0"], "fer-bench", "--threads"),
    ("benchmarks", ["soak", "--zzz"], "fer-bench soak", "--zzz"),
    ("benchmarks", ["compare"], "fer-bench compare", "required"),
    ("train", ["ship", "runs/x", "--foo"], "fer-train ship", "--foo"),
    ("train", ["card", "m.keras", "--foo"], "fer-train card", "--foo"),
    # the default commands, named or not: their options are in 'fer-X COMMAND --help' ('fer-X --help' lists commands)
    ("train", ["train", "--epochs", "abc", "--out", "x"], "fer-train", "--epochs"),
    ("train", ["--foo", "--out", "x"], "fer-train", "--foo"),
    ("train", [], "fer-train", "--out"),
    ("convert", ["convert"], "fer-convert", "model"),
    ("convert", ["m.keras", "--foo"], "fer-convert", "--foo"),
    ("benchmarks", ["--threads", "0"], "fer-bench", "--threads"),
    ("benchmarks", ["run", "--foo"], "fer-bench", "--foo"),
    ("benchmarks", ["detectors", "--foo"], "fer-bench detectors", "--foo"),
]
DEFAULT_COMMANDS = {"fer-train": "train", "fer-convert": "convert", "fer-bench": "run"}


def _exit_code(package: str, argv: list[str]) -> int:
    main = importlib.import_module(f"{package}.__main__").main
    try:
        return int(main(list(argv)))
    except SystemExit as stop:
        return int(stop.code or 0)


@pytest.mark.parametrize(("package", "argv", "prog", "named"), CASES,
                         ids=[f"{c[2]} {' '.join(c[1])}".strip() for c in CASES])
def test_a_usage_error_is_one_line(package: str, argv: list[str], prog: str, named: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(package, argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and not captured.out, captured
    assert err.startswith(f"{prog}: error: ") and named in err, err
    helps = f"{prog} {DEFAULT_COMMANDS[prog]}" if prog in DEFAULT_COMMANDS else prog
    assert err.endswith(f"(see '{helps} --help')"), err


def test_printing_the_config_needs_no_run_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """--print-config only shows what a run would use: it failed on "the following arguments are required: --out"."""
    assert _exit_code("train", ["--config", str(ROOT / "train" / "configs" / "shipped.toml"), "--print-config"]) == 0
    assert '[model]\narch = "vgg"' in capsys.readouterr().out


def _options_without_help(text: str) -> list[str]:
    """Option lines of an argparse --help with no words after them, on their line or the next one."""
    lines = text.splitlines()
    bare = []
    for i, line in enumerate(lines):
        if re.match(r"  -", line) and not re.search(r"\S {2,}\S", line.strip()):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not re.match(r" {10,}\S", following):
                bare.append(line.strip())
    return bare


@pytest.mark.parametrize("package", ["train", "convert", "benchmarks"])
def test_every_option_of_every_command_says_what_it_is(package: str, capsys: pytest.CaptureFixture[str]) -> None:
    prog, commands, _ = SHAPES[package]
    bare = {}
    for command in [*commands, *(["detectors"] if package == "benchmarks" else [])]:
        assert _exit_code(package, [command, "--help"]) == 0, command
        found = [o for o in _options_without_help(capsys.readouterr().out) if not o.startswith("-h, --help")]
        if found:
            bare[f"{prog} {command}"] = found
    assert not bare, bare


def test_the_scripts_report_usage_errors_on_one_line() -> None:
    """In a process of their own, as a user runs them, not only through main()."""
    for package in ("train", "convert", "edge", "benchmarks"):
        result = subprocess.run([sys.executable, "-m", package, "--no-such-option"], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fer-") and ": error: " in lines[0], result.stderr


# every console script, its subcommands, and the one that runs when none is named
SHAPES = {
    "edge": ("fer-edge", ["detect", "analyze", "run", "validate-config", "bundle", "deploy", "flash-prepare"], None),
    "train": ("fer-train", ["train", "evaluate", "ship", "card", "recalibrate", "combine", "report"], "train"),
    "convert": ("fer-convert", ["convert", "verify"], "convert"),
    "benchmarks": ("fer-bench", ["run", "setup-peer", "soak", "compare", "reference", "readme", "report"], "run"),
}


@pytest.mark.parametrize("package", sorted(SHAPES))
def test_every_script_lists_its_subcommands_and_each_has_its_own_help(package: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """One shape for all four: `fer-X --help` lists the commands, `fer-X COMMAND --help` gives that command's."""
    prog, commands, default = SHAPES[package]
    assert _exit_code(package, ["--help"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith(f"usage: {prog} [-h]") and "\ncommands:\n" in listing, listing
    section = listing.split("\ncommands:\n", 1)[1]
    listed = [line.split()[0] for line in section.splitlines() if line.startswith("    ") and line.split()
              and not line.startswith("     ")]
    assert listed == commands, listing
    assert f"'{prog} COMMAND --help'" in listing
    for command in commands:
        assert _exit_code(package, [command, "--help"]) == 0, command
        usage = capsys.readouterr().out.splitlines()[0]
        expected = f"usage: {prog} [{command}]" if command == default else f"usage: {prog} {command}"
        assert usage.startswith(expected), (command, usage)


def test_invocations_from_before_the_subcommands_were_listed_still_work(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`fer-train --config X --out Y` trains, `fer-convert MODEL` converts, a bare `fer-bench` runs (tests/test_benchmarks.py)."""
    out = str(tmp_path / "run")
    assert _exit_code("train", ["--arch", "tiny", "--out", out, "--print-config"]) == 0
    assert 'arch = "tiny"' in capsys.readouterr().out
    assert _exit_code("train", ["train", "--arch", "tiny", "--out", out, "--print-config"]) == 0
    assert 'arch = "tiny"' in capsys.readouterr().out
    for argv in ([str(tmp_path / "missing.keras")], ["convert", str(tmp_path / "missing.keras")]):
        assert _exit_code("convert", argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("fer-convert: error:") and "missing.keras" in err and "\n" not in err, err
