"""PiCameraSource against a stand-in picamera2: lifecycle, the lores Y plane, and failures."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edge.errors import SourceError, SourceNotInstalled
from edge.vision.sources.picamera import NOT_INSTALLED, PiCameraSource
from tests import fake_picamera2


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = fake_picamera2.make_module()
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def install(monkeypatch: pytest.MonkeyPatch, **options: object) -> types.ModuleType:
    module = fake_picamera2.make_module(**options)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def test_lifecycle_is_configure_start_capture_stop_close(picamera2: types.ModuleType) -> None:
    with PiCameraSource(640, 480, lores=(320, 240)) as source:
        source.read()
        source.read()
    camera = picamera2.Picamera2.instances[0]
    frame_calls = ["capture_request", "make_array:main", "make_array:lores", "release"]
    assert camera.calls == ["init", "create_video_configuration", "configure", "start",
                            *frame_calls, *frame_calls, "stop", "close"]
    assert camera.outstanding == 0


def test_configuration_follows_the_documented_call(picamera2: types.ModuleType) -> None:
    with PiCameraSource(800, 600, fps=20, lores=(400, 300), camera_num=0):
        pass
    kwargs = picamera2.Picamera2.instances[0].config_kwargs
    assert kwargs["main"] == {"size": (800, 600), "format": "RGB888"}
    assert kwargs["lores"] == {"size": (400, 300), "format": "YUV420"}
    assert kwargs["controls"] == {"FrameRate": 20.0}


def test_no_fps_means_no_frame_rate_control(picamera2: types.ModuleType) -> None:
    with PiCameraSource(640, 480):
        pass
    assert picamera2.Picamera2.instances[0].config_kwargs["controls"] == {}


def test_gray_is_the_lores_y_plane_without_stride_padding(picamera2: types.ModuleType) -> None:
    # 300 px rows are padded to a 320-byte stride: the padding must not leak into gray.
    with PiCameraSource(640, 480, lores=(300, 200)) as source:
        first = source.read()
        second = source.read()
    assert first is not None and second is not None
    assert first.gray is not None and first.gray.shape == (200, 300) and first.gray.dtype == np.uint8
    assert np.all(first.gray == fake_picamera2.y_value(0))
    assert np.all(second.gray == fake_picamera2.y_value(1))
    assert first.gray.flags.c_contiguous


def test_main_image_is_bgr_without_conversion(picamera2: types.ModuleType) -> None:
    with PiCameraSource(320, 240, lores=None) as source:
        frame = source.read()
    assert frame is not None
    assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
    assert tuple(frame.image[5, 5]) == fake_picamera2.MAIN_BGR  # "RGB888" is B, G, R in memory
    assert frame.index == 0 and frame.name == "" and isinstance(frame.timestamp, float)


def test_without_lores_gray_is_none_and_lores_is_not_requested(picamera2: types.ModuleType) -> None:
    with PiCameraSource(640, 480, lores=None) as source:
        frame = source.read()
    camera = picamera2.Picamera2.instances[0]
    assert frame is not None and frame.gray is None
    assert "lores" not in camera.config_kwargs or camera.config_kwargs["lores"] is None
    assert "make_array:lores" not in camera.calls


def test_indices_count_frames(picamera2: types.ModuleType) -> None:
    with PiCameraSource() as source:
        indices = [source.read().index for _ in range(3)]  # type: ignore[union-attr]
    assert indices == [0, 1, 2]
    assert source.live is True and "picamera2" in source.description


def test_failure_during_read_raises_source_error_and_releases_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch, fail_after=1)
    source = PiCameraSource()
    source.open()
    assert source.read() is not None
    with pytest.raises(SourceError, match="timed out"):
        source.read()
    camera = module.Picamera2.instances[0]
    assert camera.calls[-2:] == ["make_array:main", "release"]
    assert camera.outstanding == 0
    source.close()
    assert camera.calls[-2:] == ["stop", "close"]


def test_double_close_stops_and_closes_once(picamera2: types.ModuleType) -> None:
    source = PiCameraSource()
    source.close()  # before open: nothing to do
    source.open()
    source.close()
    source.close()
    camera = picamera2.Picamera2.instances[0]
    assert camera.calls.count("stop") == 1 and camera.calls.count("close") == 1


def test_reopen_after_close_gets_a_new_camera(picamera2: types.ModuleType) -> None:
    source = PiCameraSource()
    with source:
        source.read()
    with source:
        assert source.read() is not None
    assert len(picamera2.Picamera2.instances) == 2
    assert all(camera.closed for camera in picamera2.Picamera2.instances)


def test_read_before_open_raises(picamera2: types.ModuleType) -> None:
    with pytest.raises(SourceError, match="not open"):
        PiCameraSource().read()


def test_missing_picamera2_is_a_source_error_no_retry_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` raise ImportError
    with pytest.raises(SourceNotInstalled) as error:
        PiCameraSource().open()
    assert str(error.value) == NOT_INSTALLED


def test_missing_camera_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, cameras=1)
    with pytest.raises(SourceError, match="cannot open Pi camera 1: IndexError"):
        PiCameraSource(camera_num=1).open()


def test_start_failure_closes_the_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch, fail_on={"start"})
    source = PiCameraSource()
    with pytest.raises(SourceError, match="cannot start Pi camera 0"):
        source.open()
    camera = module.Picamera2.instances[0]
    assert camera.closed and camera.calls[-2:] == ["stop", "close"]
    source.close()  # nothing left to close
    assert camera.calls.count("close") == 1


def test_close_frees_the_camera_even_if_stop_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    module = install(monkeypatch, fail_on={"stop"})
    with PiCameraSource():
        pass
    assert module.Picamera2.instances[0].closed


@pytest.mark.parametrize("lores", [(800, 240), (321, 240)])
def test_impossible_lores_size_is_rejected(lores: tuple[int, int]) -> None:
    with pytest.raises(SourceError, match="lores"):
        PiCameraSource(640, 480, lores=lores)


@pytest.mark.parametrize("fmt, to_bgr", [("RGB888", None), ("BGR888", "COLOR_RGB2BGR"),
                                         ("XBGR8888", "COLOR_RGBA2BGR"), ("XRGB8888", "COLOR_BGRA2BGR")])
def test_the_stand_in_lays_out_rgb_formats_as_the_picamera2_manual_says(fmt: str, to_bgr: str | None) -> None:
    """picamera2 documents RGB888 as [B, G, R] and XBGR8888 as [R, G, B, A]; with OpenCV's
    conversion for that order every format must give the same colour."""
    import cv2

    camera = fake_picamera2.make_module().Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (64, 48), "format": fmt}))
    camera.start()
    with camera.captured_request() as request:
        image = request.make_array("main")
    assert image.shape == (48, 64, 4 if fmt.startswith("X") else 3)
    bgr = image if to_bgr is None else cv2.cvtColor(image, getattr(cv2, to_bgr))
    assert tuple(bgr[5, 5]) == fake_picamera2.MAIN_BGR


def test_the_stand_ins_yuv420_is_the_documented_i420_with_its_padding() -> None:
    """An (h*3/2, stride) YUV420 array converts with OpenCV's I420 reader, as picamera2's manual
    suggests, to the main stream's colour at the Y it was given: the planes are where it says."""
    import cv2

    width, height = 300, 200  # rows padded from 300 to a 320-byte stride
    camera = fake_picamera2.make_module().Picamera2()
    camera.configure(camera.create_video_configuration(main={"size": (640, 480), "format": "RGB888"},
                                                       lores={"size": (width, height), "format": "YUV420"}))
    camera.start()
    with camera.captured_request() as request:
        yuv = request.make_array("lores")
    assert yuv.shape == (height * 3 // 2, fake_picamera2.yuv_stride(width))
    converted = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)[:, :width]
    colour = np.full((height, width, 3), fake_picamera2.MAIN_BGR, np.uint8)
    i420 = cv2.cvtColor(colour, cv2.COLOR_BGR2YUV_I420)  # the unpadded layout, made by OpenCV
    assert tuple(int(v) for v in (i420[height, 0], i420[height * 5 // 4, 0])) == fake_picamera2.UV_VALUES
    i420[:height] = fake_picamera2.y_value(0)
    assert np.array_equal(converted, cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420))
