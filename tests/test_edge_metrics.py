"""The Prometheus registry: exact text exposition, parsed back, and the rules it enforces."""

from __future__ import annotations

import math
import re
import threading

import pytest

from edge.service.metrics import CONTENT_TYPE, Registry

EXPECTED = """\
# HELP fer_frames_total Frames read from the camera.
# TYPE fer_frames_total counter
fer_frames_total 3.0
# HELP fer_cpu_temp_celsius SoC temperature.
# TYPE fer_cpu_temp_celsius gauge
fer_cpu_temp_celsius 51.5
# HELP fer_dropped_total Events not published,\\nby reason (a \\\\ b).
# TYPE fer_dropped_total counter
fer_dropped_total{reason="disconnected"} 1.0
fer_dropped_total{reason="say \\"hi\\"\\n\\\\"} 3.0
# HELP fer_inference_seconds Inference latency.
# TYPE fer_inference_seconds summary
fer_inference_seconds{quantile="0.5"} 3.0
fer_inference_seconds{quantile="0.9"} 5.0
fer_inference_seconds{quantile="0.99"} 5.0
fer_inference_seconds_sum 15.0
fer_inference_seconds_count 5.0
"""


def example() -> Registry:
    registry = Registry()
    frames = registry.counter("fer_frames_total", "Frames read from the camera.")
    temperature = registry.gauge("fer_cpu_temp_celsius", "SoC temperature.")
    dropped = registry.counter("fer_dropped_total", "Events not published,\nby reason (a \\ b).",
                               labelnames=("reason",))
    latency = registry.summary("fer_inference_seconds", "Inference latency.", window=4)
    frames.inc()
    frames.inc(2)
    temperature.set(51.5)
    dropped.labels(reason="disconnected").inc()
    dropped.labels('say "hi"\n\\').inc(3)  # by position too; quotes, newline, backslash escaped
    for value in (1, 2, 3, 4, 5):  # the window keeps 2..5; sum and count cover all five
        latency.observe(value)
    return registry


# A minimal parser for the 0.0.4 text format: enough to prove the output means what we think.
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse(text: str) -> tuple[dict[str, str], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    types: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        labels = frozenset()
        if label_text:
            pairs = _LABEL.findall(label_text)
            assert "".join(f'{k}="{v}",' for k, v in pairs).rstrip(",") == label_text
            labels = frozenset((k, re.sub(r"\\.", lambda m: _UNESCAPE[m.group()], v)) for k, v in pairs)
        samples[(name, labels)] = float(value)
    return types, samples


def test_renders_the_exact_text_exposition_format() -> None:
    assert example().render() == EXPECTED
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_rendered_text_parses_back_to_the_recorded_values() -> None:
    types, samples = parse(example().render())
    assert types == {"fer_frames_total": "counter", "fer_cpu_temp_celsius": "gauge",
                     "fer_dropped_total": "counter", "fer_inference_seconds": "summary"}
    assert samples[("fer_frames_total", frozenset())] == 3
    assert samples[("fer_cpu_temp_celsius", frozenset())] == 51.5
    assert samples[("fer_dropped_total", frozenset({("reason", 'say "hi"\n\\')}))] == 3
    assert samples[("fer_inference_seconds", frozenset({("quantile", "0.5")}))] == 3
    assert samples[("fer_inference_seconds_count", frozenset())] == 5


def test_summary_quantiles_are_nearest_rank_over_the_window_and_nan_when_empty() -> None:
    registry = Registry()
    latency = registry.summary("latency_seconds", "Latency.", window=100)
    assert math.isnan(latency.quantile(0.5))
    _, samples = parse(registry.render())
    assert math.isnan(samples[("latency_seconds", frozenset({("quantile", "0.9")}))])
    assert samples[("latency_seconds_count", frozenset())] == 0

    for value in range(1, 11):  # 1..10
        latency.observe(value)
    assert (latency.quantile(0.5), latency.quantile(0.9), latency.quantile(0.99)) == (5, 9, 10)
    assert (latency.count, latency.sum) == (10, 55)


def test_gauge_goes_both_ways_and_counters_only_up() -> None:
    registry = Registry()
    queue = registry.gauge("queue_length", "Frames waiting.")
    queue.inc(3)
    queue.dec()
    assert queue.value == 2
    queue.set(-1.5)
    assert queue.value == -1.5
    frames = registry.counter("frames_total", "Frames.")
    with pytest.raises(ValueError, match="only go up"):
        frames.inc(-1)


def test_special_values_use_prometheus_spelling() -> None:
    registry = Registry()
    registry.gauge("a", "A.").set(math.inf)
    registry.gauge("b", "B.").set(-math.inf)
    registry.gauge("c", "C.").set(math.nan)
    samples = [line for line in registry.render().splitlines() if not line.startswith("#")]
    assert samples == ["a +Inf", "b -Inf", "c NaN"]


def test_a_labelled_family_with_no_children_renders_only_its_header() -> None:
    registry = Registry()
    registry.counter("errors_total", "Errors.", labelnames=("kind",))
    assert registry.render() == "# HELP errors_total Errors.\n# TYPE errors_total counter\n"
    assert Registry().render() == ""


def test_labelled_summaries_put_quantile_last() -> None:
    registry = Registry()
    family = registry.summary("stage_seconds", "Per stage.", window=8, labelnames=("stage",))
    family.labels(stage="detect").observe(2.0)
    assert 'stage_seconds{stage="detect",quantile="0.5"} 2.0' in registry.render()
    assert 'stage_seconds_sum{stage="detect"} 2.0' in registry.render()
    with pytest.raises(ValueError, match="reserved"):
        registry.summary("other_seconds", "X.", labelnames=("quantile",))


def test_same_label_values_return_the_same_child() -> None:
    family = Registry().counter("drops_total", "Drops.", labelnames=("reason", "sink"))
    assert family.labels(reason="full", sink="mqtt") is family.labels("full", "mqtt")
    with pytest.raises(ValueError):
        family.labels(reason="full")  # missing sink
    with pytest.raises(ValueError):
        family.labels("full", sink="mqtt")  # mixed
    with pytest.raises(ValueError):
        family.labels(reason="full", sink="mqtt", extra="x")


@pytest.mark.parametrize("name", ["", "1st", "has-dash", "has space", "ünïcode"])
def test_invalid_metric_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid metric name"):
        Registry().counter(name, "Bad.")


@pytest.mark.parametrize("labelnames", [("__reserved",), ("bad-label",), ("a", "a"), "reason"])
def test_invalid_label_names_are_rejected(labelnames: object) -> None:
    with pytest.raises(ValueError):
        Registry().counter("ok_total", "Fine.", labelnames=labelnames)  # type: ignore[arg-type]


def test_names_cannot_be_registered_twice_even_through_summary_suffixes() -> None:
    registry = Registry()
    registry.counter("frames_total", "Frames.")
    with pytest.raises(ValueError, match="clashes"):
        registry.gauge("frames_total", "Again.")
    registry.summary("infer_seconds", "Latency.")
    with pytest.raises(ValueError, match="clashes"):
        registry.counter("infer_seconds_count", "Clash with the summary's _count.")
    assert registry.gauge("name:with:colons", "Colons are legal.").value == 0


def test_concurrent_updates_are_not_lost() -> None:
    registry = Registry()
    counter = registry.counter("hits_total", "Hits.")
    summary = registry.summary("work_seconds", "Work.", window=16)

    def worker() -> None:
        for _ in range(2000):
            counter.inc()
            summary.observe(1.0)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(20):
        registry.render()  # rendering while others write must not raise
    for t in threads:
        t.join(timeout=10)
    assert counter.value == 8000
    assert summary.count == 8000 and summary.sum == 8000
