"""``[events] mode = "tracks"``: appear / change (with hysteresis) / leave per face, in the daemon's
log, and the bytes-per-hour measurement docs/events.md quotes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from edge.service.track_events import FrameEvents, TrackEvents
from edge.vision.faces import Box
from edge.vision.pipeline import Face, FrameResult
from tests.edge_helpers import CASCADE, MANIFEST, ROOT

LABELS = ("happy", "sad", "neutral")
CLIP = ROOT / "models" / "demo" / "demo_clip.mp4"


def frame(index: int, *faces: tuple[int, str, float]) -> FrameResult:
    """A frame at 10 fps holding faces (track id, leading label, its probability)."""
    made = []
    for track_id, label, p in faces:
        rest = (1 - p) / (len(LABELS) - 1)
        probs = {name: (p if name == label else rest) for name in LABELS}
        made.append(Face(Box(10 * track_id, 10, 50, 50), label, p, probs, track_id))
    return FrameResult(index, 1000.0 + index / 10, tuple(made))


def test_a_face_appears_changes_once_past_the_hysteresis_and_leaves_with_its_shares() -> None:
    source = TrackEvents(LABELS, max_age=3, change_frames=3, change_margin=0.1)
    script = (["happy"] * 4 + ["sad", "happy", "sad", "sad", "happy"]  # flicker: never 3 sad in a row
              + ["sad"] * 5)  # a real change: reported on its 3rd frame
    out = []
    for i, label in enumerate(script):
        out += source.events(frame(i, (7, label, 0.8)))
    assert [e["type"] for e in out] == ["appear", "change"]
    assert out[0] == {"type": "appear", "ts": "1970-01-01T00:16:40.000Z", "id": 7, "frame": 0,
                      "box": [70, 10, 50, 50], "label": "happy", "score": 0.8}
    assert out[1]["from"] == "happy" and out[1]["to"] == "sad" and out[1]["frame"] == 11
    for i in range(len(script), len(script) + 3):  # gone for max_age frames: still open
        assert source.events(frame(i)) == []
    leave = source.events(frame(len(script) + 3))
    assert [e["type"] for e in leave] == ["leave"]
    assert leave[0]["duration_s"] == pytest.approx(1.3)
    assert leave[0]["frames"] == 14 and leave[0]["label"] == "sad"
    assert leave[0]["shares"] == pytest.approx({"happy": 6 / 14, "sad": 8 / 14, "neutral": 0.0}, abs=1e-4)
    assert leave[0]["first_seen"] == "1970-01-01T00:16:40.000Z" and leave[0]["ts"] == "1970-01-01T00:16:41.300Z"


def test_a_close_call_is_not_a_change_and_finish_closes_open_tracks() -> None:
    source = TrackEvents(LABELS, max_age=3, change_frames=2, change_margin=0.3)
    out = source.events(frame(0, (1, "happy", 0.5)))
    for i in range(1, 6):  # sad leads, but by less than the margin over happy
        face = Face(Box(0, 0, 9, 9), "sad", 0.45, {"happy": 0.3, "sad": 0.45, "neutral": 0.25}, 1)
        out += source.events(FrameResult(i, 1000.0 + i, (face,)))
    assert [e["type"] for e in out] == ["appear"]
    out = source.finish()
    assert [e["type"] for e in out] == ["leave"] and out[0]["label"] == "sad"
    assert source.finish() == []


def test_frames_mode_keeps_one_event_per_frame_with_faces_and_a_type() -> None:
    source = FrameEvents(only_with_faces=True)
    assert source.events(frame(0)) == []
    [event] = source.events(frame(1, (1, "happy", 0.9)), "cam")
    assert event["type"] == "frame" and event["frame"] == 1 and event["source"] == "cam"
    assert len(FrameEvents(only_with_faces=False).events(frame(0))) == 1


def test_config_rejects_an_unknown_mode_and_tracks_without_the_tracker() -> None:
    with pytest.raises(ConfigError, match="events.mode must be one of frames, tracks"):
        load_config(None, ["events.mode=faces"])
    with pytest.raises(ConfigError, match="needs tracker.enabled"):
        load_config(None, ["events.mode=tracks", "tracker.enabled=false"])
    assert load_config(None, []).events.mode == "frames"


@pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()), reason="shipped model or demo clip missing")
def test_the_daemon_in_tracks_mode_logs_one_appear_and_one_leave_per_face(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    done = subprocess.run([sys.executable, "-m", "edge", "run", "--source", str(CLIP), "--events", str(log),
                           "--manifest", str(MANIFEST), "--set", f"detector.cascade={CASCADE}",
                           "--set", "events.mode=tracks", "--set", "http.enabled=false"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    appear = [e for e in events if e["type"] == "appear"]
    leave = [e for e in events if e["type"] == "leave"]
    assert {e["type"] for e in events} <= {"appear", "change", "leave"}
    # the clip shows 7 faces, 2 s each (its sidecar); one track each, every one closed by the end
    sidecar = json.loads((CLIP.parent / "demo_clip.mp4.json").read_text())
    faces = {face["file"] for entry in sidecar["ground_truth"] for face in entry["faces"]} \
        if "file" in sidecar["ground_truth"][0]["faces"][0] else None
    assert sorted(e["id"] for e in appear) == sorted(e["id"] for e in leave)
    if faces is not None:
        assert len(appear) == len(faces)
    for event in leave:
        assert abs(sum(event["shares"].values()) - 1) < 1e-3 and event["frames"] >= 1
        assert event["label"] == max(event["shares"], key=event["shares"].get)
    assert f"{len(events)} events" in done.stdout


@pytest.mark.skipif(not (MANIFEST.is_file() and CLIP.is_file()), reason="shipped model or demo clip missing")
def test_event_volume_prints_bytes_per_hour_for_both_modes() -> None:
    done = subprocess.run([sys.executable, "-m", "edge.service.event_volume", "--loops", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert set(rows) == {"frames", "tracks"}
    frames_events, tracks_events = int(rows["frames"][1]), int(rows["tracks"][1])
    assert frames_events == 120  # every frame of the clip has a face
    assert 0 < tracks_events < frames_events
    # bytes per hour = bytes over the clip's 8 s, times 450
    for row in rows.values():
        assert float(row[3]) == pytest.approx(int(row[2]) * 450 / 1e6, rel=0.01)
    # docs/events.md quotes a 30-loop run of the same command: one loop writes the same per hour, but
    # for frame numbers and track ids a digit or two shorter
    documented = {}
    for line in (ROOT / "docs" / "events.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] in rows:
            documented[cells[0]] = float(cells[3])
    assert set(documented) == set(rows)
    for mode, row in rows.items():
        assert float(row[3]) == pytest.approx(documented[mode], rel=0.05), mode
