"""EventLog: JSON Lines that survive full disks, deleted directories, kills and restarts."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from edge.service.events import EventLog, dumps

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux /dev/full")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_each_event_is_one_compact_json_line_on_disk_immediately(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "nested" / "events.jsonl"  # parent directories are created
    log = EventLog(path)
    assert log.write({"emotion": "happy", "score": 0.75})
    # Readable before close: a kill right now would lose nothing.
    assert path.read_text() == '{"emotion":"happy","score":0.75}\n'
    assert log.write({"emotion": "sad"})
    log.close()
    assert [json.loads(line) for line in lines(path)] == [{"emotion": "happy", "score": 0.75}, {"emotion": "sad"}]
    assert (log.written, log.errors, log.last_error) == (2, 0, None)


def test_numpy_values_from_the_model_are_written_as_plain_json(tmp_path: Path) -> None:
    with EventLog(tmp_path / "events.jsonl") as log:
        assert log.write({"score": np.float32(0.5), "probs": np.array([0.25, 0.75]), "n": np.int64(3)})
    assert json.loads(lines(tmp_path / "events.jsonl")[0]) == {"score": 0.5, "probs": [0.25, 0.75], "n": 3}
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'


def test_reopening_appends_and_never_truncates_existing_events(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"boot":1}\n')
    with EventLog(path) as log:
        log.write({"boot": 2})
    with EventLog(path) as log:
        log.write({"boot": 3})
    assert lines(path) == ['{"boot":1}', '{"boot":2}', '{"boot":3}']


def test_a_torn_last_line_is_terminated_so_the_next_event_stays_parseable(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"ok":1}\n{"torn":')  # what a power cut mid-write can leave
    with EventLog(path) as log:
        log.write({"ok": 2})
    assert lines(path) == ['{"ok":1}', '{"torn":', '{"ok":2}']


def test_rotates_by_size_keeping_the_newest_lines_in_numbered_backups(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    # Every line is '{"i":"NN"}\n', 11 bytes: four fit in 50 bytes, a fifth would not.
    with EventLog(path, max_bytes=50, backups=2) as log:
        for i in range(1, 21):
            assert log.write({"i": f"{i:02d}"})
        assert log.written == 20

    def numbers(p: Path) -> list[int]:
        return [int(json.loads(line)["i"]) for line in lines(p)]

    assert numbers(path) == [17, 18, 19, 20]
    assert numbers(path.with_name("events.jsonl.1")) == [13, 14, 15, 16]
    assert numbers(path.with_name("events.jsonl.2")) == [9, 10, 11, 12]
    assert not path.with_name("events.jsonl.3").exists()  # older ones are dropped
    assert all(p.stat().st_size <= 50 for p in tmp_path.iterdir())


def test_rotation_counts_what_is_already_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"i":"00"}\n' * 4)  # 44 bytes from a previous run
    with EventLog(path, max_bytes=50, backups=1) as log:
        log.write({"i": "05"})
    assert lines(path) == ['{"i":"05"}']
    assert len(lines(path.with_name("events.jsonl.1"))) == 4


def test_zero_max_bytes_or_backups_means_never_rotate(tmp_path: Path) -> None:
    for name, max_bytes, backups in (("a.jsonl", 0, 3), ("b.jsonl", 20, 0)):
        with EventLog(tmp_path / name, max_bytes=max_bytes, backups=backups) as log:
            for i in range(10):
                log.write({"i": i})
        assert len(lines(tmp_path / name)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


@needs_dev_full
def test_disk_full_returns_false_and_counts_the_error_without_raising(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.symlink_to("/dev/full")  # every write() fails with ENOSPC, like a full SD card
    with EventLog(path) as log:
        assert log.write({"emotion": "angry"}) is False
        assert log.errors == 1 and log.written == 0
        assert log.last_error is not None and os.strerror(errno.ENOSPC) in log.last_error
        assert log.write({"emotion": "angry"}) is False  # retried (reopened), failed again
        assert log.errors == 2


@needs_dev_full
def test_dev_full_itself_as_the_path_is_never_rotated_or_renamed() -> None:
    with EventLog("/dev/full", max_bytes=1, backups=3) as log:
        assert log.write({"x": 1}) is False
        assert log.write({"x": 2}) is False
        assert log.errors == 2
    assert os.path.exists("/dev/full") and not os.path.exists("/dev/full.1")


@needs_dev_full
def test_logging_resumes_by_itself_when_space_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.symlink_to("/dev/full")
    with EventLog(path) as log:
        assert log.write({"n": 1}) is False
        # "Space comes back": the path now leads to a writable file again.
        path.unlink()
        assert log.write({"n": 2}) is True
        assert log.write({"n": 3}) is True
        assert (log.written, log.errors) == (2, 1)
    assert lines(path) == ['{"n":2}', '{"n":3}']


def test_a_deleted_log_directory_is_recreated_instead_of_writing_into_the_void(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    with EventLog(directory / "events.jsonl") as log:
        assert log.write({"n": 1})
        shutil.rmtree(directory)  # the open descriptor now points at an unlinked file
        assert log.write({"n": 2})
    assert lines(directory / "events.jsonl") == ['{"n":2}']


def test_an_unwritable_location_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    log = EventLog(blocker / "events.jsonl")  # the parent "directory" is a file
    assert log.errors == 1 and log.last_error is not None
    assert log.write({"n": 1}) is False
    assert log.errors == 2
    log.close()


def test_close_is_idempotent_and_later_writes_are_refused(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.close()
    log.close()
    assert log.closed
    assert log.write({"late": True}) is False
    assert log.errors == 0  # a closed log is not a disk problem
    assert (tmp_path / "events.jsonl").read_text() == ""


def test_concurrent_writers_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with EventLog(path, max_bytes=2_000, backups=50) as log:
        def worker(k: int) -> None:
            for i in range(100):
                log.write({"thread": k, "i": i, "pad": "x" * 20})

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert log.written == 400
    files = [path, *sorted(tmp_path.glob("events.jsonl.*"))]
    records = [json.loads(line) for f in files for line in lines(f)]
    assert len(records) == 400
    assert sorted((r["thread"], r["i"]) for r in records) == [(k, i) for k in range(4) for i in range(100)]


def test_rejects_negative_sizes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EventLog(tmp_path / "e.jsonl", max_bytes=-1)


class Disk:
    """How many more bytes fit; ``FillingFile`` writes consult it, across reopens."""

    def __init__(self) -> None:
        self.room = 10**9


class FillingFile:
    """The log's file on a disk that fills up: what still fits is written (a short write, as the
    kernel does on a full disk), then every write fails with ENOSPC until ``disk.room`` grows."""

    def __init__(self, real: object, disk: Disk) -> None:
        self._real = real
        self.disk = disk

    def write(self, data: bytes) -> int:
        if self.disk.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = self._real.write(bytes(data[: self.disk.room]))  # type: ignore[attr-defined]
        self.disk.room -= n
        return n

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


def test_a_full_disk_mid_line_leaves_no_torn_line_and_is_logged_once_per_outage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import builtins

    import edge.service.events as events_module

    path = tmp_path / "events.jsonl"
    disk = Disk()
    real_open = builtins.open
    monkeypatch.setattr(events_module, "open", lambda *args, **kwargs: FillingFile(real_open(*args, **kwargs), disk),
                        raising=False)
    caplog.set_level("INFO", logger="edge.service.events")
    with EventLog(path) as log:
        assert log.write({"n": 1})
        disk.room = 5  # the disk fills up 5 bytes into the next line
        assert log.write({"n": 2, "pad": "x" * 50}) is False
        for _ in range(5):  # every write during the outage fails, each reopening the file
            assert log.write({"n": 3}) is False
        assert path.read_text() == '{"n":1}\n'  # the 5 bytes that fit were taken back
        disk.room = 10**9  # space comes back
        assert log.write({"n": 4})
        disk.room = 0  # a second outage is logged again
        assert log.write({"n": 5}) is False
    assert lines(path) == ['{"n":1}', '{"n":4}']
    failures = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(failures) == 2 and failures[0].levelname == "ERROR"
    assert os.strerror(errno.ENOSPC) in failures[0].getMessage()
    recovered = [r for r in caplog.records if "writable again" in r.getMessage()]
    assert len(recovered) == 1 and "6 events lost" in recovered[0].getMessage()
