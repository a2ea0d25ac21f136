"""A tiny Prometheus registry rendering text exposition format 0.0.4, with no dependency.

The daemon needs a handful of counters, gauges and one latency summary on a Pi where every
installed package is a liability, so this is the subset of ``prometheus_client`` it uses:
metrics with optional fixed label names, a sliding-window summary, and ``render()``.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar, overload

__all__ = ["Counter", "Family", "Gauge", "Registry", "Summary", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.9, 0.99)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def format_value(value: float) -> str:
    """Go-style spelling of the special values, which is what Prometheus parses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


class _Metric:
    """One time series (or, for a summary, one group of them) with its label values fixed."""

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...], lock: threading.Lock) -> None:
        self._name = name
        self._labels = labels
        self._lock = lock

    def _samples(self) -> Iterator[str]:  # called with the registry lock held
        raise NotImplementedError


class _Value(_Metric):
    """One number under a lock: what a counter and a gauge share."""

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...], lock: threading.Lock) -> None:
        super().__init__(name, labels, lock)
        self._value = 0.0

    @property
    def value(self) -> float:
        with self._lock:
            return self._value

    def _samples(self) -> Iterator[str]:
        yield f"{self._name}{_label_text(self._labels)} {format_value(self._value)}"


class Counter(_Value):
    """A value that only goes up (restarts reset it; Prometheus' rate() handles that)."""

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"counter {self._name} can only go up, got inc({amount})")
        with self._lock:
            self._value += float(amount)


class Gauge(_Value):
    """A value that goes up and down: a temperature, a queue length, a connected flag."""

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += float(amount)

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value -= float(amount)


class Summary(_Metric):
    """Quantiles over the last ``window`` observations, sum and count over all of them.

    A sliding window rather than a decaying sketch: it is exact, bounded in memory, and answers
    "how slow is inference lately", which is the question a Pi dashboard asks. Quantiles are
    nearest-rank (always an observed value); with no observations they are NaN, as in
    ``prometheus_client``.
    """

    def __init__(self, name: str, labels: tuple[tuple[str, str], ...], lock: threading.Lock,
                 window: int) -> None:
        super().__init__(name, labels, lock)
        self._window: deque[float] = deque(maxlen=window)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        with self._lock:
            value = float(value)  # numpy scalars would otherwise leak into sums and repr()
            self._window.append(value)
            self._sum += value
            self._count += 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    @property
    def sum(self) -> float:
        with self._lock:
            return self._sum

    def quantile(self, q: float) -> float:
        with self._lock:
            return _nearest_rank(sorted(self._window), q)

    def _samples(self) -> Iterator[str]:
        ordered = sorted(self._window)
        for q in QUANTILES:
            labels = self._labels + (("quantile", repr(q)),)
            yield f"{self._name}{_label_text(labels)} {format_value(_nearest_rank(ordered, q))}"
        plain = _label_text(self._labels)
        yield f"{self._name}_sum{plain} {format_value(self._sum)}"
        yield f"{self._name}_count{plain} {format_value(self._count)}"


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return math.nan
    # The epsilon keeps q*n that should be an integer (0.9*10) from rounding up a rank.
    rank = math.ceil(q * len(ordered) - 1e-9)
    return ordered[min(max(rank, 1), len(ordered)) - 1]


M = TypeVar("M", Counter, Gauge, Summary)


class Family(Generic[M]):
    """A metric with label names: one child per distinct set of label values, made on first use."""

    def __init__(self, name: str, labelnames: tuple[str, ...], make: _Maker[M],
                 lock: threading.Lock) -> None:
        self._name = name
        self._labelnames = labelnames
        self._make = make
        self._lock = lock
        self._children: dict[tuple[str, ...], M] = {}

    def labels(self, *values: str, **kwargs: str) -> M:
        """The child for these label values, by position or by name (not both)."""
        if values and kwargs:
            raise ValueError(f"{self._name}: give label values by position or by name, not both")
        if kwargs:
            if set(kwargs) != set(self._labelnames):
                raise ValueError(f"{self._name}: expected labels {list(self._labelnames)}, "
                                 f"got {sorted(kwargs)}")
            values = tuple(kwargs[n] for n in self._labelnames)
        if len(values) != len(self._labelnames):
            raise ValueError(f"{self._name}: expected {len(self._labelnames)} label values, got {len(values)}")
        key = tuple(str(v) for v in values)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._make(tuple(zip(self._labelnames, key)))
                self._children[key] = child
            return child

    def _samples(self) -> Iterator[str]:
        for child in self._children.values():
            yield from child._samples()


class _Maker(Generic[M]):
    """Builds a child metric for given label pairs; a class so ``Family`` stays generic."""

    def __init__(self, kind: type[M], name: str, lock: threading.Lock, window: int = 0) -> None:
        self.kind, self.name, self.lock, self.window = kind, name, lock, window

    def __call__(self, labels: tuple[tuple[str, str], ...]) -> M:
        if self.kind is Summary:
            return Summary(self.name, labels, self.lock, self.window)  # type: ignore[return-value]
        return self.kind(self.name, labels, self.lock)  # type: ignore[call-arg]


class Registry:
    """Holds metrics in registration order and renders them. Thread-safe: one lock for all,
    so a scrape sees a consistent snapshot and observations from any thread are safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str, str, _Metric | Family]] = []  # name, type, help, metric
        self._taken: set[str] = set()

    @overload
    def counter(self, name: str, help: str) -> Counter: ...
    @overload
    def counter(self, name: str, help: str, labelnames: Sequence[str]) -> Family[Counter]: ...

    def counter(self, name: str, help: str, labelnames: Sequence[str] | None = None) -> Counter | Family[Counter]:
        return self._register(name, help, "counter", _Maker(Counter, name, self._lock), labelnames, (name,))

    @overload
    def gauge(self, name: str, help: str) -> Gauge: ...
    @overload
    def gauge(self, name: str, help: str, labelnames: Sequence[str]) -> Family[Gauge]: ...

    def gauge(self, name: str, help: str, labelnames: Sequence[str] | None = None) -> Gauge | Family[Gauge]:
        return self._register(name, help, "gauge", _Maker(Gauge, name, self._lock), labelnames, (name,))

    @overload
    def summary(self, name: str, help: str, window: int = 1024) -> Summary: ...
    @overload
    def summary(self, name: str, help: str, window: int = 1024, *,
                labelnames: Sequence[str]) -> Family[Summary]: ...

    def summary(self, name: str, help: str, window: int = 1024, *,
                labelnames: Sequence[str] | None = None) -> Summary | Family[Summary]:
        if window < 1:
            raise ValueError(f"summary {name}: window must be >= 1, got {window}")
        if labelnames is not None and "quantile" in labelnames:
            raise ValueError(f"summary {name}: 'quantile' is reserved for the quantile label")
        return self._register(name, help, "summary", _Maker(Summary, name, self._lock, window),
                              labelnames, (name, f"{name}_sum", f"{name}_count"))

    def render(self) -> str:
        """The whole registry in text exposition format 0.0.4, ending with a newline."""
        lines: list[str] = []
        with self._lock:
            for name, kind, help, metric in self._entries:
                lines.append(f"# HELP {name} {_escape_help(help)}")
                lines.append(f"# TYPE {name} {kind}")
                lines.extend(metric._samples())
        return "\n".join(lines) + "\n" if lines else ""

    def _register(self, name: str, help: str, kind: str, make: _Maker[M],
                  labelnames: Sequence[str] | None, sample_names: tuple[str, ...]) -> M | Family[M]:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        if isinstance(labelnames, str):
            raise ValueError(f"{name}: labelnames must be a sequence of names, not the string {labelnames!r}")
        names = tuple(labelnames) if labelnames is not None else ()
        for label in names:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"{name}: invalid label name {label!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate label names in {list(names)}")
        with self._lock:
            clash = self._taken.intersection(sample_names)
            if clash:
                raise ValueError(f"metric {name!r} clashes with an already registered {sorted(clash)[0]!r}")
            metric: M | Family[M] = make(()) if labelnames is None else Family(name, names, make, self._lock)
            self._taken.update(sample_names)
            self._entries.append((name, kind, help, metric))
        return metric
