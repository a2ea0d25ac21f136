"""A usage error from any console script is one line naming the tool and the problem, exit code 2.

argparse's default prints the whole usage block first; these fail on that.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.edge_helpers import ROOT

CASES = [
    ("edge", ["run", "--bogus"], "fer-edge", "--bogus"),
    ("edge", [], "fer-edge", "command"),
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
]


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
    assert err.endswith(f"(see '{prog} --help')"), err


def test_the_scripts_report_usage_errors_on_one_line() -> None:
    """In a process of their own, as a user runs them, not only through main()."""
    for package in ("train", "convert", "edge", "benchmarks"):
        result = subprocess.run([sys.executable, "-m", package, "--no-such-option"], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fer-") and ": error: " in lines[0], result.stderr
