"""fer-bench end to end on the bundled sample with tiny run counts, plus its arithmetic on known inputs.

Benchmarks are not tests: nothing here checks a speed. It checks that a run writes the full
report with every artifact, that MACs are counted right, that the peer's absence is reported
rather than invented, and that bad inputs fail in one line with exit code 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.__main__ import main
from tests.conftest import MODELS, ROOT, SAMPLE

MANIFEST = MODELS / "manifest.json"
QUICK = ["--manifest", str(MANIFEST), "--data", str(SAMPLE), "--quick", "--frames", "3", "--threads", "1",
         "--batch", "1,2"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quick run shared by the structure tests; the peer points at a python that does not exist."""
    out = tmp_path_factory.mktemp("bench") / "run"
    code = main(["run", *QUICK, "--peer-python", str(out.parent / "no-such-venv" / "bin" / "python"),
                 "--out", str(out)])
    assert code == 0
    return out


def test_quick_run_writes_report_json_and_charts(quick_run: Path) -> None:
    from edge.manifest import load_manifest

    results = json.loads((quick_run / "results.json").read_text())
    report = (quick_run / "report.md").read_text()
    artifacts = set(load_manifest(MANIFEST).artifacts)
    assert results["schema"] == "fer-bench-results"
    for section in ("## Summary", "## Targets", "## Accuracy", "## Model latency", "## Pipeline latency per stage",
                    "## Face detection on the demo clip", "## Peer: the `fer` package", "## System"):
        assert section in report
    accuracy = {m["name"]: m for m in results["accuracy"]["models"]}
    assert artifacts <= set(accuracy)
    for name in artifacts:
        assert 0.0 <= accuracy[name]["accuracy"] <= 1.0 and 0.0 <= accuracy[name]["macro_f1"] <= 1.0
        assert set(accuracy[name]["per_class_f1"]) == set(results["accuracy"]["labels"])
        assert f"| {name} |" in report
    assert results["accuracy"]["images"] == 70
    rows = results["model_latency"]["rows"]
    assert {r["artifact"] for r in rows} == artifacts
    assert all(r["stats"]["p50"] > 0 and r["load_ms"] > 0 and r["peak_rss_mb"] > 0 for r in rows)
    assert {r["batch"] for r in rows} == {1, 2}
    assert all(results["model_latency"]["macs_per_face"][name] > 0 for name in artifacts)
    pipeline = results["pipeline"]
    assert {r["artifact"] for r in pipeline["rows"]} == artifacts
    for row in pipeline["rows"]:
        assert set(row["stages"]) == {"decode", "convert", "detect", "crop", "classify", "track"}
        assert row["total"]["p50"] > 0 and row["fps"] > 0 and row["cpu_ms_per_frame"]["runs"] >= 3
    assert pipeline["frame_size"] == [640, 480]
    assert 0.0 <= pipeline["detection"]["int8"]["recall"] <= 1.0
    assert [t["name"] for t in results["targets"]] == ["latency", "recall", "memory"]
    for png in ("latency_stages.png", "accuracy.png", "model_latency.png", "confusion_int8.png"):
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"{png}" in report
    assert not (quick_run.parent / "latest.md").exists(), "a --quick run must not replace the README table"


def test_missing_peer_is_reported_not_invented(quick_run: Path) -> None:
    results = json.loads((quick_run / "results.json").read_text())
    assert results["peer"]["available"] is False
    assert "not found" in results["peer"]["reason"] and "fer-bench setup-peer" in results["peer"]["reason"]
    assert results["peer"]["latency"] is None and results["peer"]["accuracy"] == []
    assert results["ratios"] == {}
    report = (quick_run / "report.md").read_text()
    assert "**Not measured**" in report and "No figure for `fer` is shown" in report
    recall = next(t for t in results["targets"] if t["name"] == "recall")
    assert recall["met"] is None


def test_reference_and_compare(quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = tmp_path / "x86_64.csv"
    assert main(["reference", str(quick_run), "--out", str(csv_path)]) == 2  # quick runs are no reference
    assert "refusing" in capsys.readouterr().err
    assert main(["reference", str(quick_run), "--out", str(csv_path), "--allow-quick"]) == 0
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[:2] == ["device_class", "measured_on"] and "p50_ms" in header
    capsys.readouterr()
    assert main(["compare", str(quick_run / "results.json"), "--reference", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "| model | int8 | litert | 1 | 1 |" in out and "| pipeline | int8 |" in out
    assert "| 1.00 |" in out  # a run compared with itself


def test_readme_block_is_replaced_between_markers(quick_run: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- fer-bench:start -->\nold\n<!-- fer-bench:end -->\n\nafter\n")
    assert main(["readme", str(quick_run), "--update", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| int8 |" in text and text.endswith("<!-- fer-bench:end -->\n\nafter\n")


def _conv_gemm_model(path: Path, groups: int) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    in_c, out_c, size, units = 4, 6, 8, 5
    weight = np.zeros((out_c, in_c // groups, 3, 3), np.float32)
    dense = np.zeros((out_c * size * size, units), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], group=groups),
         helper.make_node("Flatten", ["c"], ["f"]),
         helper.make_node("Gemm", ["f", "d"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_c, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", units])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(dense, "d")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("groups", [1, 2])
def test_onnx_macs_match_hand_count(tmp_path: Path, groups: int) -> None:
    from benchmarks.macs import onnx_macs

    path = tmp_path / "tiny.onnx"
    _conv_gemm_model(path, groups)
    conv = 8 * 8 * 6 * 3 * 3 * 4 // groups  # out_h*out_w*out_c*k_h*k_w*in_c/groups
    gemm = (6 * 8 * 8) * 5  # in*out
    assert onnx_macs(path) == conv + gemm


def test_tflite_and_onnx_macs_agree_on_the_shipped_model() -> None:
    from benchmarks.macs import artifact_macs
    from edge.manifest import load_manifest

    manifest = load_manifest(MANIFEST)
    counts = {name: artifact_macs(manifest.artifact_path(name), a.format) for name, a in manifest.artifacts.items()}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 1_000_000, counts


def test_a_views_artifact_counts_every_view_it_runs() -> None:
    """models/views10 runs the shipped classifier on ten views of each face: ten times its MACs."""
    from benchmarks.macs import artifact_macs
    from edge.manifest import load_manifest

    views10 = MODELS / "views10" / "manifest.json"
    if not views10.is_file():
        pytest.skip("views artifact not built")
    single = artifact_macs(load_manifest(MANIFEST).artifact_path("int8"), "tflite")
    assert artifact_macs(load_manifest(views10).artifact_path("int8"), "tflite") == 10 * single


@pytest.mark.parametrize("argv, message", [
    (["--manifest", "no/such/manifest.json"], "does not exist"),
    (["--manifest", str(MANIFEST), "--artifacts", "int8,int9"], "manifest has no artifact 'int9'"),
    (["--manifest", str(MANIFEST), "--clip", "no/such.mp4", "--no-peer"], "clip no/such.mp4 does not exist"),
    (["compare", "no/such/results.json"], "does not exist"),
    (["--manifest", str(MANIFEST), "--also", "no/such/manifest.json", "--no-peer"], "--also: "),
])
def test_bad_inputs_fail_in_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fer-bench: error: ") and message in err[0], err


def test_timing_stats_and_stop_rule() -> None:
    from benchmarks.timing import TimingPolicy, measure, summarize

    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (stats.runs, stats.p50, stats.min, stats.max, stats.iqr) == (5, 3.0, 1.0, 100.0, 2.0)
    calls = []
    samples = measure(lambda: calls.append(1), TimingPolicy(warmup=2, min_runs=7, min_seconds=0.0, max_seconds=5.0))
    assert len(samples) == 7 and len(calls) == 9


def test_detection_matching() -> None:
    from benchmarks.detection import score_detections
    from edge.faces import Box

    truth = [[(Box(0, 0, 100, 100), "happy"), (Box(300, 0, 100, 100), "sad")], []]
    found = [[(Box(5, 5, 100, 100), "happy"), (Box(500, 300, 50, 50), "sad")], [(Box(0, 0, 10, 10), "fear")]]
    score = score_detections(truth, found)
    assert (score.truth, score.detected, score.true_positives) == (2, 3, 1)
    assert score.recall == 0.5 and score.precision == pytest.approx(1 / 3) and score.label_accuracy == 1.0


def test_targets_are_judged_from_the_json() -> None:
    from benchmarks.targets import judge

    stats = {"p50": 8.0, "p95": 9.0}
    results = {"config": {"target_artifact": "int8"},
               "pipeline": {"rows": [{"artifact": "int8", "threads": 1, "total": stats, "total_with_decode": stats,
                                      "frames": 10, "faces_per_frame": 1.5, "cpu_ms_per_frame": stats}],
                            "detection": {"int8": {"recall": 0.9, "precision": 1.0, "frames": 10, "truth": 15}}},
               "peer": {"available": True, "detection": {"recall": 0.8, "precision": 0.9}},
               "soak": {"frames": 10_000, "start_mb": 100.0, "end_mb": 101.0, "max_mb": 101.5, "growth_mb": 0.4,
                        "slope_kb_per_1000_frames": 41.0, "flat": True, "flat_threshold_mb": 5.0}}
    assert [t["met"] for t in judge(results)] == [True, True, True]
    results["pipeline"]["rows"][0]["total"] = {"p50": 12.0, "p95": 14.0}
    results["soak"]["frames"] = 2_000
    assert [t["met"] for t in judge(results)] == [False, True, None]


def test_soak_samples_rss_and_fits_a_slope(tmp_path: Path) -> None:
    from benchmarks.soak import fit_growth, run_soak

    result = run_soak(MANIFEST, MODELS / "demo" / "demo_clip.mp4", frames=6, every=2)
    assert [s[0] for s in result.samples] == [0, 2, 4, 6] and all(s[1] > 0 for s in result.samples)
    slope, growth = fit_growth([(i * 100, 50.0 + i * 0.1) for i in range(11)], 1000)
    assert growth == pytest.approx(1.0) and slope == pytest.approx(1024.0)


def test_peer_runner_preprocessing_and_network_block() -> None:
    """The runner's own logic, without the peer venv: fer's preprocessing and the socket guard."""
    code = (
        "import numpy as np, socket\n"
        "from benchmarks import peer_fer_runner as r\n"
        "x = r.preprocess(np.array([[[0, 255], [128, 64]]], np.uint8), (64, 64))\n"
        "assert x.shape == (1, 64, 64) and x.min() >= -1.0 and x.max() <= 1.0 and x.min() == -1.0\n"
        "r.block_network()\n"
        "s = socket.socket()\n"
        "try:\n    s.connect(('127.0.0.1', 9)); raise SystemExit('connected')\n"
        "except OSError as e:\n    assert 'blocked' in str(e)\n"
        "assert len(r.ATTEMPTS) == 1\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


BLOCK_KERAS = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'convert'):
            raise ImportError('blocked for this test: ' + name)
        return None
sys.meta_path.insert(0, Block())
from benchmarks.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_runs_without_keras_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "no-keras"
    argv = [*QUICK, "--artifacts", "int8,float32", "--batch", "1", "--frames", "2", "--no-peer", "--out", str(out)]
    result = subprocess.run([sys.executable, "-c", BLOCK_KERAS, *argv], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (out / "report.md").read_text()
    assert "Keras not installed, float reference from the float32 TFLite artifact" in report
    results = json.loads((out / "results.json").read_text())
    assert results["accuracy"]["reference"] == "float32"
    assert [m["name"] for m in results["accuracy"]["models"]] == ["int8", "float32"]


@pytest.mark.slow
def test_also_sets_another_model_beside_the_main_one(tmp_path: Path) -> None:
    """A second model (here a tiny CNN; in practice a MobileNetV2 backbone) scored and timed like the first."""
    from convert.__main__ import main as convert
    from train.config import load_config
    from train.training import train

    run = tmp_path / "run"
    train(load_config(None, [f"data.dir={SAMPLE}", "data.val_fraction=0.25", "model.arch=tiny", "train.epochs=1",
                             "train.warmup_epochs=0", "train.batch_size=32"]), run, verbose=0)
    other = tmp_path / "other"
    assert convert([str(run / "model.keras"), "--out", str(other), "--formats", "int8,float32", "--name", "tiny",
                    "--calibration-data", str(SAMPLE), "--verify-data", str(SAMPLE), "--max-drop", "100"]) == 0
    out = tmp_path / "bench"
    assert main(["run", *QUICK, "--no-peer", "--also", str(other / "manifest.json"), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    (also,) = results["also"]
    assert also["name"] == "tiny" and set(also["artifacts"]) == {"int8", "float32"}
    assert also["accuracy"]["images"] == results["accuracy"]["images"] == 70
    assert {m["name"] for m in also["accuracy"]["models"]} >= {"int8", "float32"}
    assert {r["artifact"] for r in also["model_latency"]["rows"]} == {"int8", "float32"}
    report = (out / "report.md").read_text()
    side = report.split("## Models side by side", 1)[1].split("##", 1)[0]
    assert "| fer_vgg | 1,176,359 | int8 |" in side and "| tiny |" in side


def test_int8_dot_product_instructions_are_read_from_cpuinfo() -> None:
    from benchmarks.system import int8_dot_instructions

    assert int8_dot_instructions("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma\n") == []
    assert int8_dot_instructions("flags\t\t: avx2 avx512f avx512_vnni amx_int8\n") == ["avx512_vnni", "amx_int8"]
    assert int8_dot_instructions("Features\t: fp asimd asimddp i8mm\nCPU part\t: 0xd0b\n") == ["asimddp", "i8mm"]
    assert int8_dot_instructions("Hardware\t: BCM2835\n") is None


def test_report_explains_int8_no_faster_than_float32_only_when_it_is_not() -> None:
    from benchmarks.report import int8_speed_note

    def results(int8_ms: float, found: list[str] | None) -> dict:
        rows = [{"artifact": name, "threads": 1, "batch": 1, "stats": {"p50": ms}}
                for name, ms in (("int8", int8_ms), ("float32", 9.0))]
        return {"model_latency": {"rows": rows}, "system": {"int8_dot_instructions": found}}

    assert int8_speed_note(results(2.5, [])) is None  # 3.6x: nothing to explain
    slow = int8_speed_note(results(8.0, []))
    assert slow is not None and "1.12x as fast" in slow and "no int8 dot-product instructions" in slow
    # with the instructions present, or unknown, the report gives the ratio and no explanation
    assert "instructions" not in int8_speed_note(results(8.0, ["avx512_vnni"]))
    assert "instructions" not in int8_speed_note(results(8.0, None))
