"""The instruction-set flags a CPU reports, read from /proc/cpuinfo (Linux: x86 'flags', ARM 'Features').

Which instructions exist decides what runs fast (int8 dot products, bfloat16), so benchmarks explain
their figures with them and training warns about an emulated precision.
"""

from __future__ import annotations

import re
from pathlib import Path


def parse_cpu_flags(cpuinfo: str) -> set[str] | None:
    """The flags in a /proc/cpuinfo text; None when it lists none (another OS's or an odd kernel's)."""
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    return None if match is None else set(match.group(1).split())


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """This machine's flags; None where there is no /proc/cpuinfo."""
    try:
        return parse_cpu_flags(cpuinfo.read_text())
    except OSError:
        return None
