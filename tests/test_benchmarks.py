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
    from edge.vision.manifest import load_manifest

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
    assert 0.0 <= pipeline["detection_every_frame"]["int8"]["recall"] <= 1.0
    assert [t["name"] for t in results["targets"]] == ["latency", "recall", "tilted", "detector speed",
                                                       "demo recall", "memory"]
    detectors = results["detectors"]
    scenes = {(r["scene"], r["setup"].split(",")[0]) for r in detectors["rows"]}
    assert {("demo clip", "haar"), ("demo clip", "blazeface"), ("tilted clip (FER2013 sample)", "haar"),
            ("tilted clip (FER2013 sample)", "blazeface")} <= scenes
    tilted = {r["setup"]: r for r in detectors["rows"] if r["scene"].startswith("tilted clip")}
    assert set(tilted["haar"]["by_angle"]) == {"0", "15", "-15", "30", "-30"}
    # the point of BlazeFace: faces turned 30 degrees are found where Haar finds almost none
    assert tilted["blazeface, aligned"]["by_angle"]["30"]["recall"] > tilted["haar"]["by_angle"]["30"]["recall"] + 0.4
    assert "## Face detectors side by side" in report and "| tilted clip (FER2013 sample) | haar |" in report
    for png in ("latency_stages.png", "accuracy.png", "model_latency.png", "confusion_int8.png"):
        assert (quick_run / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f"{png}" in report
    assert not (quick_run.parent / "latest.md").exists(), "a --quick run must not replace the README table"


def test_a_quick_run_judges_no_target(quick_run: Path) -> None:
    """A smoke run's few timings measure nothing: "not met" there read as failures no measurement showed."""
    results = json.loads((quick_run / "results.json").read_text())
    assert all(t["met"] is None and t["judged"] is False for t in results["targets"]), results["targets"]
    report = (quick_run / "report.md").read_text()
    targets = report.split("## Targets", 1)[1].split("\n## ", 1)[0]
    assert "**not judged**" in targets and "**not met**" not in targets and "**met**" not in targets


def test_the_results_name_no_folder_of_this_machine(quick_run: Path) -> None:
    """The manifest relative to the repository, the data by name: reports are read on other machines."""
    results = json.loads((quick_run / "results.json").read_text())
    assert results["manifest"]["path"] == results["config"]["manifest"] == "models/manifest.json"
    assert results["accuracy"]["data"] == "fer2013_sample/test" and results["config"]["data"] == "fer2013_sample"
    assert results["config"]["clip"] == "models/demo/demo_clip.mp4"
    report = (quick_run / "report.md").read_text()
    assert "from `models/manifest.json`" in report and "Data: `fer2013_sample/test` (70 faces)" in report
    # the command as typed keeps its paths: it is what was run
    assert str(ROOT) not in report.replace(results["config"]["command"], "").replace(str(quick_run), "")


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
    assert "| model | int8 | litert | 1 | 1 |" in out and "| pipeline | int8 | litert | 1 |" in out
    assert "ai_edge_litert" not in out  # one runtime, one name, in model and pipeline rows alike
    assert "| 1.00 |" in out  # a run compared with itself
    # the committed reference names the pipeline's runtime ai_edge_litert: its rows still match
    assert main(["compare", str(quick_run), "--reference", str(ROOT / "benchmarks" / "reference" / "x86_64.csv")]) == 0
    out = capsys.readouterr().out
    assert "| pipeline | int8 | litert | 1 |" in out and "ai_edge_litert" not in out


def test_readme_block_is_replaced_between_markers(quick_run: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- fer-bench:start -->\nTHE OLD BLOCK\n<!-- fer-bench:end -->\n\nafter\n")
    assert main(["readme", str(quick_run), "--update", str(readme)]) == 0
    text = readme.read_text()
    assert "THE OLD BLOCK" not in text and "| fer-edge, int8 (default) | Haar |" in text and text.endswith("<!-- fer-bench:end -->\n\nafter\n")


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
    from edge.vision.manifest import load_manifest

    manifest = load_manifest(MANIFEST)
    counts = {name: artifact_macs(manifest.artifact_path(name), a.format) for name, a in manifest.artifacts.items()}
    assert len(set(counts.values())) == 1 and next(iter(counts.values())) > 1_000_000, counts


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
    from edge.vision.faces import Box

    truth = [[(Box(0, 0, 100, 100), "happy"), (Box(300, 0, 100, 100), "sad")], []]
    found = [[(Box(5, 5, 100, 100), "happy"), (Box(500, 300, 50, 50), "sad")], [(Box(0, 0, 10, 10), "fear")]]
    score = score_detections(truth, found)
    assert (score.truth, score.detected, score.true_positives) == (2, 3, 1)
    assert score.recall == 0.5 and score.precision == pytest.approx(1 / 3) and score.label_accuracy == 1.0


def test_readme_without_a_run_takes_the_run_measured_last_not_the_file_written_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quick_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fer-bench report` on an older run rewrites its results.json: by file time it became the newest."""
    import os

    import benchmarks.__main__ as cli
    from benchmarks.outputs import newest_run

    results = json.loads((quick_run / "results.json").read_text())
    for folder, time in (("vm-2030-01-02", "2030-01-02T09:00:00+00:00"), ("vm-2030-01-01", "2030-01-01T09:00:00+00:00"),
                         ("vm-2030-01-01-2", "2030-01-01T18:00:00+00:00")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps({**results, "system": {
            **results["system"], "date": time[:10], "time": time}}))
    os.utime(tmp_path / "vm-2030-01-02" / "results.json", (1, 1))  # written first, long ago
    assert newest_run(tmp_path) == tmp_path / "vm-2030-01-02" / "results.json"
    monkeypatch.setattr(cli, "RESULTS_ROOT", tmp_path)
    assert main(["readme"]) == 0
    assert "on 2030-01-02" in capsys.readouterr().out
    (tmp_path / "vm-2030-01-02" / "results.json").unlink()
    assert newest_run(tmp_path) == tmp_path / "vm-2030-01-01-2" / "results.json"


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
    # fer detects on every frame: once a run has our every-frame detection, recall is judged on it
    results["pipeline"]["detection_every_frame"] = {"int8": {"recall": 0.7, "precision": 1.0, "frames": 10,
                                                             "truth": 15}}
    recall = judge(results)[1]
    assert recall["met"] is False and "full detection every frame" in recall["target"]


def test_the_timed_pass_starts_with_a_full_detection_whatever_the_warm_up() -> None:
    """Warm-up frames must not shift which frames get the full detector (that moved recall)."""
    from benchmarks.pipeline_latency import build_pipeline

    import cv2

    frame = cv2.imread(str(sorted((SAMPLE / "test" / "happy").glob("*.jpg"))[0]))
    pipeline = build_pipeline(MANIFEST, "int8", 1)
    for index in range(2):  # a warm-up that is not a multiple of detect_every
        pipeline.process(frame, index)
    pipeline.reset()
    assert [pipeline.process(frame, index).detected for index in range(4)] == [True, False, False, True]


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


# --- like-for-like pipeline latency, honest labels, safe outputs (review of fer-bench) ---

COMMITTED = sorted((ROOT / "benchmarks" / "results").glob("*/results.json"))
NOT_MEASURED = "not measured in this run"


def _results(quick_run: Path) -> dict:
    return json.loads((quick_run / "results.json").read_text())


def test_pipeline_times_the_daemon_schedule_and_full_detection_every_frame(quick_run: Path) -> None:
    """The daemon's schedule skips most full detections; those frames are reported apart, and a second
    measurement runs the full detector on every frame, the one fer (which detects every frame) is set against."""
    import cv2

    from edge.config import EdgeConfig, detect_every

    pipeline = _results(quick_run)["pipeline"]
    every = detect_every(EdgeConfig())  # Haar's default schedule (tracker.detect_every 0: the detector's own)
    assert pipeline["detect_every"] == every and pipeline["opencv_threads"] == cv2.getNumThreads()
    for row in pipeline["rows"]:
        assert row["detect_every"] == every
        assert 0 < row["detected_frames"] <= -(-row["frames"] // every)
        assert row["total_detected"]["runs"] == row["detected_frames"]
    full = {r["artifact"]: r for r in pipeline["full_detection_rows"]}
    assert set(full) == {r["artifact"] for r in pipeline["rows"]}
    for row in full.values():
        assert row["detect_every"] == 1 and row["detected_frames"] == row["frames"]
    report = (quick_run / "report.md").read_text()
    assert f"classifier 1 thread, OpenCV {cv2.getNumThreads()} thread" in report
    assert "### Full detection on every frame" in report
    latency = next(t for t in _results(quick_run)["targets"] if t["name"] == "latency")
    assert "daemon defaults" in latency["target"] and f"OpenCV {cv2.getNumThreads()} thread" in latency["target"]
    assert "full-detection frames p50" in latency["measured"]


def test_fer_is_compared_with_full_detection_on_every_frame() -> None:
    """The ratio to fer uses our every-frame row, not the daemon's cheaper tracked frames."""
    from benchmarks.runner import ratios

    stats = {"p50": 0.0, "p95": 0.0}

    def row(p50: float, every: int) -> dict:
        return {"artifact": "int8", "total": {**stats, "p50": p50}, "cpu_ms_per_frame": {**stats, "p50": p50},
                "detect_every": every}

    daemon, full, fer = row(4.0, 3), row(16.0, 1), {"p50": 20.0, "p95": 25.0}
    results = {"config": {"target_artifact": "int8"}, "pipeline": {"rows": [daemon], "full_detection_rows": [full]},
               "peer": {"available": True, "latency": fer, "cpu_ms_per_frame": fer}}
    got = ratios(results)
    assert got["latency_p50_ours_over_fer"] == pytest.approx(full["total"]["p50"] / fer["p50"])
    assert got["ours_detect_every"] == 1
    results["pipeline"]["full_detection_rows"] = []
    assert ratios(results) == {}  # no like-for-like figure of ours: no ratio, rather than the daemon's


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_results_render_and_say_what_they_did_not_measure(path: Path) -> None:
    """Every committed run renders; a run from before a field existed says it did not measure it (nothing
    is filled in), and fer's figures sit only beside our full detection on every frame."""
    from benchmarks.report import load_results

    _renders_honestly(load_results(path))


def test_a_new_run_renders_both_schedules(quick_run: Path) -> None:
    _renders_honestly(_results(quick_run))


def _renders_honestly(results: dict) -> None:
    from benchmarks.report import _stat, readme_table, render, summary_table

    table = "\n".join(summary_table(results))
    header = _cells(table.splitlines()[0])
    every_frame = "pipeline ms/frame p50 ± IQR/2, full detection every frame"
    full = {r["artifact"]: r for r in results["pipeline"].get("full_detection_rows", [])}
    for artifact in results["manifest"]["artifacts"]:
        line = next(line for line in table.splitlines() if line.startswith(f"| {artifact} |"))
        cells = dict(zip(header, _cells(line)))
        assert cells[every_frame] == (_stat(full[artifact]["total"]) if artifact in full else NOT_MEASURED)
    readme = readme_table(results)
    assert ("OpenCV threads not recorded" in render(results, [])) == ("opencv_threads" not in results["pipeline"])
    cold = "load ms (ours cold: includes importing the runtime)" in table
    assert cold == (not results["model_latency"].get("load_ms_excludes_import"))
    latency = next(line for line in readme.splitlines() if line.startswith("| end-to-end"))
    assert "daemon defaults" in latency
    assert (f"full-detection frames: {NOT_MEASURED}" in latency) == ("total_detected" not in results["pipeline"]["rows"][0])
    report = render(results, [])
    if results["peer"].get("available"):
        peer_line = next(line for line in table.splitlines() if "fer (TFLite, default)" in line)
        images = results["accuracy"]["images"]
        assert f"(all {images:,} faces in one call)" in peer_line, "fer's ms/face is not at our batch size"
        cells = dict(zip(header, _cells(peer_line)))
        daemon = next(k for k in cells if k.startswith("pipeline ms/frame") and "daemon defaults" in k)
        assert cells[daemon] == "–"  # fer has no tracked frames: it sits only beside our every-frame figure
        assert cells[every_frame] == _stat(results["peer"]["latency"])
        like_for_like = (results.get("ratios") or {}).get("ours_detect_every") == 1
        assert ("not like for like" in report) == (not like_for_like and bool(results.get("ratios")))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_readme_block_is_rendered_from_the_committed_results_it_names() -> None:
    import re

    from benchmarks.report import load_results, readme_table

    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- fer-bench:start -->\n", 1)[1].split("<!-- fer-bench:end -->", 1)[0]
    source = re.search(r" — (benchmarks/results/\S+?)\. Regenerate", block.splitlines()[0]).group(1)
    assert block == readme_table(load_results(ROOT / source), source), \
        f"re-render it: fer-bench readme {source} --update README.md"


def test_no_page_quotes_fer_against_the_table() -> None:
    """No typed figure for fer, in README or docs/, that the measured table contradicts."""
    import re

    from benchmarks.report import load_results

    text = (ROOT / "README.md").read_text()
    outside = text.split("<!-- fer-bench:start -->", 1)[0] + text.split("<!-- fer-bench:end -->", 1)[1]
    outside += "".join(page.read_text() for page in sorted((ROOT / "docs").glob("*.md")))
    block = text.split("<!-- fer-bench:start -->\n")[1]
    source = re.search(r" — (benchmarks/results/\S+?)\. Regenerate", block).group(1)
    peer = load_results(ROOT / source)["peer"]
    for quoted in re.findall(r"PyPI `fer`[^.]*?(\d+(?:\.\d+)?) ?%", outside):
        measured = peer["accuracy"][0]["accuracy"] * 100
        assert abs(float(quoted) - measured) < 0.5, f"a page says fer scores {quoted}%, the table {measured:.2f}%"


def test_an_out_that_cannot_be_a_folder_fails_before_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import benchmarks.runner
    import benchmarks.soak

    def measured(*_: object, **__: object) -> None:
        raise AssertionError("measured before checking the output path")

    monkeypatch.setattr(benchmarks.runner, "run", measured)
    monkeypatch.setattr(benchmarks.soak, "run_soak", measured)
    taken = tmp_path / "taken"
    taken.write_text("x")
    no_markers = tmp_path / "README.md"
    no_markers.write_text("# no table markers\n")
    for argv in (["run", *QUICK, "--no-peer", "--out", str(taken)],
                 ["run", *QUICK, "--no-peer", "--out", str(taken / "sub")],
                 ["run", *QUICK, "--no-peer", "--out", str(tmp_path / "ok"), "--readme", str(no_markers)],
                 ["soak", "--frames", "2", "--out", str(taken)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fer-bench: error: "), (argv, err)


def test_bad_limit_faces_and_clip_fail_before_any_timing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import benchmarks.model_latency

    def timed(*_: object, **__: object) -> None:
        raise AssertionError("timed models before checking the arguments")

    monkeypatch.setattr(benchmarks.model_latency, "measure_models", timed)
    assert main(["run", *QUICK, "--no-peer", "--limit-faces", "-1", "--out", str(tmp_path / "a")]) == 2
    assert "--limit-faces" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video either\n")
    for clip in (text, fake):
        assert main(["run", *QUICK, "--no-peer", "--clip", str(clip), "--out", str(tmp_path / "b")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"clip {clip}" in err[0], err


def test_default_folder_never_replaces_an_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.__main__ as cli
    import benchmarks.system

    monkeypatch.setattr(cli, "RESULTS_ROOT", tmp_path)
    monkeypatch.setattr(benchmarks.system, "host_name", lambda: "host")
    monkeypatch.setattr(benchmarks.system, "system_info", lambda: {"date": "2030-01-02"})
    first = cli._default_out()
    first.mkdir()
    (first / "results.json").write_text("{}")
    second = cli._default_out()
    assert second != first and not second.exists() and second.parent == tmp_path
    second.mkdir()
    assert cli._default_out() not in (first, second)
    (tmp_path / "host-2030-01-02-views10").mkdir()  # a named run of that day is not one of the numbered ones
    from benchmarks.outputs import todays_folder

    assert todays_folder(tmp_path, "host", "2030-01-02") == second


def test_explicit_out_keeps_a_full_run_unless_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    import benchmarks.runner

    def measured(*_: object, **__: object) -> None:
        raise AssertionError("measured before refusing to replace a full run")

    monkeypatch.setattr(benchmarks.runner, "run", measured)
    full = tmp_path / "full"
    full.mkdir()
    shutil.copy(COMMITTED[0], full / "results.json")
    assert main(["run", *QUICK, "--no-peer", "--out", str(full)]) == 2
    assert "--force" in capsys.readouterr().err


def test_a_soak_of_another_model_is_not_carried_into_a_new_run(quick_run: Path, tmp_path: Path) -> None:
    """Rerunning into a folder (here a quick run's) must not keep a soak measured on another model."""
    import shutil

    reused = tmp_path / "reused"
    shutil.copytree(quick_run, reused)
    results = _results(reused)
    soak = json.loads(json.dumps(COMMITTED_SOAK))
    soak["artifact_sha256"] = "0" * 64  # another int8 file
    results["soak"] = soak
    (reused / "results.json").write_text(json.dumps(results))
    assert main(["run", *QUICK, "--no-peer", "--artifacts", "int8", "--batch", "1", "--out", str(reused)]) == 0
    assert "soak" not in _results(reused)
    assert "Not run." in (reused / "report.md").read_text().split("## Memory soak", 1)[1]


COMMITTED_SOAK = next(json.loads(p.read_text())["soak"] for p in COMMITTED if "soak" in json.loads(p.read_text()))


def test_only_the_same_models_soak_is_carried_and_it_is_labelled(quick_run: Path, tmp_path: Path) -> None:
    from benchmarks.outputs import carried_soak
    from benchmarks.report import render
    from benchmarks.targets import judge

    results = _results(quick_run)
    sha = results["manifest"]["artifacts"]["int8"]["sha256"]
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    soak = {**COMMITTED_SOAK, "artifact": "int8", "measured_at": "2030-01-02T03:04:05+00:00"}
    for recorded, carried in ((None, False), ("0" * 64, False), (sha, True)):
        # a soak from before the sha was recorded has no such key (the committed one has the shipped sha)
        entry = {**soak, "artifact_sha256": recorded} if recorded else \
            {k: v for k, v in soak.items() if k != "artifact_sha256"}
        (earlier / "soak.json").write_text(json.dumps(entry))
        got = carried_soak(results, [earlier])
        assert (got is not None) == carried, recorded
    results["soak"] = got
    report = render(results, [])
    assert "except the memory soak, carried over" in report and "2030-01-02T03:04:05" in report
    memory = next(t for t in judge(results) if t["name"] == "memory")
    assert "carried over from the run of 2030-01-02T03:04:05" in memory["measured"]


def test_latest_md_is_written_only_into_the_results_root(tmp_path: Path) -> None:
    """Re-rendering a full run elsewhere must not drop a latest.md beside it."""
    import shutil

    run = tmp_path / "x" / "run"
    run.mkdir(parents=True)
    source = next(p for p in COMMITTED if not json.loads(p.read_text())["config"].get("quick"))
    shutil.copy(source, run / "results.json")
    assert main(["report", str(run)]) == 0
    assert (run / "report.md").is_file() and not (tmp_path / "x" / "latest.md").exists()
    from benchmarks.outputs import RESULTS_ROOT, latest_md

    assert latest_md(run, quick=False) is None
    assert latest_md(RESULTS_ROOT / "vm-2030-01-01", quick=True) is None
    assert latest_md(RESULTS_ROOT / "vm-2030-01-01", quick=False) == RESULTS_ROOT / "latest.md"
    # README's table shows the shipped model: a full run of another one keeps to its own folder
    shipped = ROOT / "models" / "manifest.json"
    assert latest_md(RESULTS_ROOT / "vm-2030-01-01", quick=False, manifest=shipped) == RESULTS_ROOT / "latest.md"
    opt_in = ROOT / "models" / "views10" / "manifest.json"  # any manifest other than the shipped one
    assert latest_md(RESULTS_ROOT / "vm-2030-01-01", quick=False, manifest=opt_in) is None


def test_compare_shows_accuracy_only_for_the_same_model_on_the_same_faces(
        quick_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    from benchmarks.reference import COLUMNS

    path = tmp_path / "ref.csv"
    assert main(["reference", str(quick_run), "--out", str(path), "--allow-quick"]) == 0
    rows = list(csv.DictReader(path.open()))
    assert all(r["data_sha256"] and r["images"] for r in rows)
    assert all(r["model_sha256"] for r in rows if r["kind"] == "model")

    def compared(edit: dict[str, str], drop: tuple[str, ...] = ()) -> str:
        columns = [c for c in COLUMNS if c not in drop]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({**r, **edit} for r in rows)
        capsys.readouterr()
        assert main(["compare", str(quick_run), "--reference", str(path)]) == 0
        printed = capsys.readouterr().out.splitlines()
        return next(line for line in printed if line.startswith("| model | int8 | litert | 1 | 1 |"))

    assert compared({}).endswith("| +0.00 |")
    assert "not comparable: different test data" in compared({"data_sha256": "f" * 64})
    assert "not comparable: different model" in compared({"model_sha256": "f" * 64})
    old = compared({}, drop=("data", "images", "data_sha256", "model_sha256"))  # a reference from before
    assert "| 1.00 |" in old and "not comparable: test data not recorded in the reference" in old


def test_fer_per_face_time_is_labelled_with_the_batch_it_was_timed_at() -> None:
    from benchmarks.report import summary_table

    peer = {"available": True, "package": "fer 0", "ms_per_face": {"fer (TFLite, default)": 0.5,
                                                                   "fer (Keras .hdf5)": 2.5},
            "ms_per_face_batch": {"fer (TFLite, default)": 70, "fer (Keras .hdf5)": 32},
            "accuracy": [{"name": n, "accuracy": 0.5, "macro_f1": 0.5} for n in ("fer (TFLite, default)",
                                                                                 "fer (Keras .hdf5)")]}
    results = {"accuracy": {"images": 70, "models": []}, "config": {"batches": [1, 8]}, "peer": peer,
               "manifest": {"artifacts": {}}, "pipeline": {}}
    table = "\n".join(summary_table(results))
    assert "| 0.500 (all 70 faces in one call) |" in table and "| 2.50 (batches of 32) |" in table


def test_load_time_is_timed_after_the_runtime_is_imported(tmp_path: Path) -> None:
    """A fresh worker's first load must not include importing LiteRT: it is imported before the clock starts."""
    code = (
        "import json, sys\n"
        "import edge.vision.classifier as c\n"
        "seen = []\n"
        "class Spy(c.Classifier):\n"
        "    def __init__(self, *a, **k):\n"
        "        seen.append(k.get('tflite_module') in sys.modules)\n"
        "        super().__init__(*a, **k)\n"
        "c.Classifier = Spy\n"
        "from benchmarks.model_worker import run_job\n"
        "job = json.loads(sys.argv[1])\n"
        "out = run_job(job)\n"
        "print(json.dumps({'seen': seen, 'rows': len(out['rows'])}))\n")
    faces = tmp_path / "faces.npy"
    np.save(faces, np.zeros((1, 48, 48), np.uint8))
    job = {"manifest": str(MANIFEST), "artifact": "int8", "tflite_module": "ai_edge_litert.interpreter",
           "threads": [1, 2], "batches": [1], "faces": str(faces),
           "policy": {"warmup": 0, "min_runs": 1, "min_seconds": 0.0, "max_seconds": 0.1}}
    result = subprocess.run([sys.executable, "-c", code, json.dumps(job)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"seen": [True, True], "rows": 2}


