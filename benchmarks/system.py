"""What a set of figures was measured on: host, CPU, cores, load, Python and library versions.

Versions come from package metadata, not imports, so describing the system never loads
tensorflow into a process that is about to be timed. The load average is recorded because a
busy machine makes every timing noisy, and the report says so when it was busy.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from edge.vision.cpu_flags import cpu_flags, parse_cpu_flags

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert", "tflite-runtime", "onnxruntime",
            "onnx", "tensorflow", "tensorflow-cpu", "keras", "matplotlib", "fer-edge")


def cpu_model() -> str:
    """The CPU's name: x86 'model name', or a Pi's device-tree model plus its core type."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return platform.processor() or platform.machine()


# Instructions for int8 dot products. Without them (x86 with only AVX2, say), int8 kernels widen
# to 16 bits and do about as much work per multiply-accumulate as float32 ones, so an int8 model
# is smaller but not much faster; the report says so rather than leave the reader puzzled.
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def int8_dot_instructions(cpuinfo: str | None = None) -> list[str] | None:
    """The int8 dot-product instructions the CPU reports (x86 flags, ARM Features); None if unknown."""
    present = cpu_flags() if cpuinfo is None else parse_cpu_flags(cpuinfo)
    if present is None:
        return None
    return [flag for flag in INT8_DOT_FLAGS if flag in present]


def device_model() -> str:
    """A board's name from the device tree (e.g. 'Raspberry Pi 5 Model B Rev 1.0'); '' on PCs."""
    try:
        return Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode(errors="replace").strip()
    except OSError:
        return ""


def device_class() -> str:
    """The reference CSV a run compares with: 'raspberry-pi-5', 'raspberry-pi-4', or the machine (x86_64)."""
    model = device_model()
    match = re.match(r"Raspberry Pi (\d+|Zero 2)", model)
    if match:
        return "raspberry-pi-" + match.group(1).lower().replace(" ", "")
    return platform.machine() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def memory_total_mb() -> float:
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    except OSError:
        return 0.0
    return round(int(match.group(1)) / 1024, 1) if match else 0.0


def host_name() -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def system_info() -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).astimezone()
    return {
        "host": host_name(),
        "date": now.date().isoformat(),
        "time": now.isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "device_model": device_model(),
        "device_class": device_class(),
        "machine": platform.machine(),
        "cores": cores(),
        "int8_dot_instructions": int8_dot_instructions(),
        "memory_mb": memory_total_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "load_average_start": load_average(),
        "versions": versions(),
        "git_commit": git_commit(),
    }


def busy_note(info: dict[str, Any]) -> str | None:
    """A sentence for the report when something else was using the CPU at the start."""
    load = info.get("load_average_start") or []
    if load and load[0] > 0.5 * max(1, int(info.get("cores", 1))):
        return (f"The 1-minute load average was {load[0]:.2f} on {info.get('cores')} cores when the run started: "
                "other processes were using the CPU, so timings are noisy and slower than on an idle machine.")
    return None
