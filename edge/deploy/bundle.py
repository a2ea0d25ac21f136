"""``fer-edge bundle``: one versioned tarball that installs the daemon on a Raspberry Pi.

The tarball holds everything ``install.sh`` needs and nothing it has to guess::

    fer-edge-<version>-<model>/
        install.sh              the installer (Bookworm, Trixie, Debian, Ubuntu)
        bundle.env              VERSION, BUNDLE_ID, MODEL, ARTIFACT, MIN_PYTHON (sourced by install.sh)
        SHA256SUMS              every other file's sha256, checked before install.sh changes anything
        wheels/                 the edge package as a wheel, plus any wheels given with --wheels
        models/                 the chosen artifacts, their (filtered) manifest and the Haar cascade
        config/edge.toml        the default daemon config
        systemd/fer-edge.service
        demo/demo_clip.mp4      a clip to check an install with, no camera needed

The wheel is written here rather than by a build backend: it holds only ``edge`` (never
``train``, ``convert`` or ``benchmarks``), needs no network or build isolation, and is byte-for-byte
reproducible. Tarballs are reproducible too (fixed mtimes, owners and order).
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.packaged import models_dir, shipped_cascade, shipped_manifest

EDGE_DIR = Path(__file__).resolve().parents[1]
REPO = EDGE_DIR.parent
DEPLOY_DIR = EDGE_DIR / "deploy"
DEFAULT_CONFIG = EDGE_DIR / "configs" / "edge.toml"
DEFAULT_CASCADE = shipped_cascade()
BLAZEFACE = models_dir() / "blazeface"
DEFAULT_DEMO = models_dir() / "demo" / "demo_clip.mp4"  # a checkout's; a wheel carries no demo clip
MIN_PYTHON = "3.11"
EPOCH = 315532800  # 1980-01-01, the earliest time a zip can hold; overridden by SOURCE_DATE_EPOCH


class BundleError(EdgeError):
    """A bundle that cannot be built or does not match its sha256 list."""


@dataclass(frozen=True)
class Bundle:
    path: Path  # the .tar.gz
    name: str  # its top folder
    version: str
    bundle_id: str
    sha256: str  # of the tarball


def _epoch() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return max(int(value), EPOCH) if value.isdigit() else EPOCH


def project_metadata() -> tuple[str, list[str], dict[str, list[str]]]:
    """Version, base requirements and extras from pyproject.toml (a checkout) or the installed distribution."""
    pyproject = REPO / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = {k: v for k, v in project.get("optional-dependencies", {}).items() if k in ("edge", "pi", "mqtt")}
        return project["version"], list(project.get("dependencies", [])), extras
    from importlib import metadata

    try:
        return metadata.version("fer-edge"), ["numpy>=1.24"], {}
    except metadata.PackageNotFoundError:
        raise BundleError("cannot tell fer-edge's version: no pyproject.toml and fer-edge is not installed") from None


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def packaged_models() -> list[Path]:
    """The files a wheel carries as ``edge/models/``: pyproject.toml's package-data list for ``edge.models``
    in a checkout (the one place that names them), the installed package's own otherwise."""
    folder = models_dir()
    pyproject = REPO / "pyproject.toml"
    if pyproject.is_file():
        setuptools = tomllib.loads(pyproject.read_text()).get("tool", {}).get("setuptools", {})
        patterns = setuptools.get("package-data", {}).get("edge.models", [])
        files = sorted({path for pattern in patterns for path in folder.glob(pattern) if path.is_file()})
        missing = [p for p in patterns if not any(folder.glob(p))]
        if missing:
            raise BundleError(f"pyproject.toml ships models/{missing[0]}, which does not exist")
        return files
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")
                  and "__pycache__" not in path.parts)


def build_wheel(out_dir: Path) -> Path:
    """``fer_edge-<version>-py3-none-any.whl`` holding the ``edge`` package only (with its configs, deploy
    files and the shipped defaults of ``edge/models/``, as the setuptools wheel has them)."""
    version, requires, extras = project_metadata()
    files: dict[str, bytes] = {}
    for path in sorted(EDGE_DIR.rglob("*")):
        rel = path.relative_to(EDGE_DIR)
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if rel.parts[0] == "models":
            continue  # an installed package's shipped defaults: added below, from the one list
        if path.suffix in (".py", ".toml", ".sh", ".service"):
            files[f"edge/{rel.as_posix()}"] = path.read_bytes()
    for path in packaged_models():
        files[f"edge/models/{path.relative_to(models_dir()).as_posix()}"] = path.read_bytes()
    dist_info = f"fer_edge-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", "Name: fer-edge", f"Version: {version}",
            "Summary: fer-edge camera daemon (the edge package only, built by fer-edge bundle)",
            f"Requires-Python: >={MIN_PYTHON}"]
    meta += [f"Requires-Dist: {req}" for req in requires]
    for extra, reqs in extras.items():
        meta.append(f"Provides-Extra: {extra}")
        for req in reqs:
            name, _, marker = req.partition(";")
            marker = f"({marker.strip()}) and extra == \"{extra}\"" if marker.strip() else f"extra == \"{extra}\""
            meta.append(f"Requires-Dist: {name.strip()}; {marker}")
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: fer-edge bundle\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/entry_points.txt"] = b"[console_scripts]\nfer-edge = edge.__main__:main\n"
    files[f"{dist_info}/top_level.txt"] = b"edge\n"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name, data in files.items():
        writer.writerow([name, _record_hash(data), len(data)])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"fer_edge-{version}-py3-none-any.whl"
    stamp = time.gmtime(_epoch())[:6]
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return wheel


def _copy_models(manifest_path: Path, artifacts: list[str], cascade: Path, dest: Path) -> str:
    """Copy the chosen artifacts (checked against the manifest) and a manifest naming only them; the model's name."""
    from edge.vision.manifest import check_artifact, load_manifest

    manifest_path = Path(manifest_path)
    if manifest_path.is_dir():
        manifest_path = manifest_path / "manifest.json"
    manifest = load_manifest(manifest_path)
    raw = json.loads(manifest_path.read_text())
    dest.mkdir(parents=True)
    kept = {}
    for name in artifacts:
        source = check_artifact(manifest, name)  # a corrupt model is caught here, not on the Pi
        entry = dict(raw["artifacts"][name])
        entry["path"] = source.name
        shutil.copyfile(source, dest / source.name)
        kept[name] = entry
    raw["artifacts"] = kept
    (dest / "manifest.json").write_text(json.dumps(raw, indent=2) + "\n")
    if not cascade.is_file():
        raise BundleError(f"Haar cascade {cascade} does not exist")
    shutil.copyfile(cascade, dest / "haarcascade_frontalface_default.xml")
    if BLAZEFACE.is_dir():  # [detector] kind = "blazeface" needs its model and the sha256 it is checked against
        shutil.copytree(BLAZEFACE, dest / "blazeface", ignore=shutil.ignore_patterns("*.md"))
    return manifest.name


def _config_text(config: Path, artifact: str) -> str:
    """The default config, naming the bundle's first artifact; rejected here if it is not a valid edge.toml."""
    from edge.config import build_config

    try:
        text = config.read_text()
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise BundleError(f"config file {config} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(f"config file {config} is not valid TOML: {exc}") from None
    current = raw.get("model", {}).get("artifact", "int8")
    if current != artifact:
        text, count = re.subn(r'(?m)^(\s*artifact\s*=\s*)"[^"]*"', rf'\g<1>"{artifact}"', text, count=1)
        if not count:
            text = text.replace("[model]\n", f'[model]\nartifact = "{artifact}"\n', 1)
        raw = tomllib.loads(text)
    build_config(raw, source=config)  # unknown keys and wrong types fail on the workstation, not at first boot
    return text


def sha256_file(path: Path) -> str:
    from edge.vision.manifest import sha256_file as digest

    return digest(path)


def build_bundle(output: Path, manifest: Path | None = None, artifacts: list[str] | None = None,
                 config: Path | None = None, wheels: Path | None = None, cascade: Path | None = None,
                 demo: Path | None = DEFAULT_DEMO) -> Bundle:
    """Write ``<output>/fer-edge-<version>-<model>.tar.gz`` (and a ``.sha256`` beside it)."""
    manifest = Path(manifest) if manifest else shipped_manifest()
    artifacts = list(dict.fromkeys(artifacts or ["int8"]))
    version, _, _ = project_metadata()
    installer = DEPLOY_DIR / "install.sh"
    unit = DEPLOY_DIR / "fer-edge.service"
    for required in (installer, unit):
        if not required.is_file():
            raise BundleError(f"{required} is missing from this checkout")
    if wheels is not None and not Path(wheels).is_dir():
        raise BundleError(f"wheels folder {wheels} does not exist")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fer-edge-bundle-", dir=output) as tmp:
        stage = Path(tmp) / "stage"
        model_name = _copy_models(manifest, artifacts, Path(cascade) if cascade else DEFAULT_CASCADE,
                                  stage / "models")
        name = f"fer-edge-{version}-{model_name}"
        (stage / "config").mkdir()
        (stage / "config" / "edge.toml").write_text(_config_text(Path(config) if config else DEFAULT_CONFIG,
                                                                 artifacts[0]))
        (stage / "systemd").mkdir()
        shutil.copyfile(unit, stage / "systemd" / "fer-edge.service")
        shutil.copyfile(installer, stage / "install.sh")
        build_wheel(stage / "wheels")
        if wheels is not None:
            for wheel in sorted(Path(wheels).glob("*.whl")):
                shutil.copyfile(wheel, stage / "wheels" / wheel.name)
        if demo is not None and Path(demo).is_file():
            (stage / "demo").mkdir()
            shutil.copyfile(demo, stage / "demo" / Path(demo).name)
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        content = hashlib.sha256("".join(f"{sha256_file(stage / f)}  {f}\n" for f in files).encode()).hexdigest()
        bundle_id = f"{version}-{content[:12]}"
        (stage / "bundle.env").write_text(
            f"# written by fer-edge bundle; sourced by install.sh\nVERSION={version}\nBUNDLE_ID={bundle_id}\n"
            f"MODEL={model_name}\nARTIFACT={artifacts[0]}\nARTIFACTS=\"{' '.join(artifacts)}\"\n"
            f"MIN_PYTHON={MIN_PYTHON}\n")
        files = sorted(files + ["bundle.env"])
        (stage / "SHA256SUMS").write_text("".join(f"{sha256_file(stage / f)}  {f}\n" for f in files))
        tarball = output / f"{name}.tar.gz"
        partial = Path(tmp) / tarball.name
        _write_tar(stage, name, sorted(files + ["SHA256SUMS"]), partial)
        digest = sha256_file(partial)
        os.replace(partial, tarball)
        (output / f"{tarball.name}.sha256").write_text(f"{digest}  {tarball.name}\n")
    return Bundle(tarball, name, version, bundle_id, digest)


def _write_tar(stage: Path, top: str, files: list[str], out: Path) -> None:
    mtime = _epoch()
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)})
        for entry in [""] + dirs:
            info = tarfile.TarInfo(f"{top}/{entry}".rstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for rel in files:
            data = (stage / rel).read_bytes()
            info = tarfile.TarInfo(f"{top}/{rel}")
            info.size, info.mtime = len(data), mtime
            info.mode = 0o755 if rel.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))


def verify_tarball(tarball: Path) -> str:
    """The tarball's top folder, after checking it against the ``.sha256`` written beside it (when present)."""
    tarball = Path(tarball)
    if not tarball.is_file():
        raise BundleError(f"bundle {tarball} does not exist")
    sidecar = tarball.with_name(tarball.name + ".sha256")
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0]
        if sha256_file(tarball) != expected:
            raise BundleError(f"bundle {tarball} does not match {sidecar.name} (corrupt or tampered)")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            names = tar.getnames()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"bundle {tarball} is not a readable .tar.gz: {exc}") from None
    tops = {n.split("/")[0] for n in names}
    if len(tops) != 1 or f"{next(iter(tops))}/install.sh" not in names:
        raise BundleError(f"bundle {tarball} is not a fer-edge bundle (no single top folder with install.sh)")
    return next(iter(tops))
