"""edge/ runs on a Pi with no tensorflow, train or convert: prove it with those imports blocked."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.edge_helpers import MANIFEST, ROOT, SAMPLE

BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'train', 'convert'):
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
import pkgutil, importlib, edge, edge.vision.sources
for module in pkgutil.walk_packages(edge.__path__, 'edge.'):
    if module.name not in ('edge.__main__', 'edge.vision.sources.picamera'):
        importlib.import_module(module.name)
from edge.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_edge_imports_and_detects_without_tensorflow() -> None:
    image = sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]
    result = subprocess.run([sys.executable, "-c", BLOCKER, "detect", str(image), "--manifest", str(MANIFEST)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["image"] == str(image)
    assert "blocked for this test" not in result.stderr
