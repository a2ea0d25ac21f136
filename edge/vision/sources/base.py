"""The frame record and the source interface every adapter implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from types import TracebackType

import numpy as np


@dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous; frames compare by identity
class Frame:
    """One captured frame.

    ``image`` is what gets annotated and published, so it is always BGR uint8 (H, W, 3).
    ``gray`` exists because some sources get a greyscale plane for free (picamera2's lores Y
    plane): detecting on it skips a colour conversion and a resize on a Pi. It may be smaller
    than ``image``; the detector scales boxes back by the size ratio. ``None`` means the consumer
    converts ``image`` itself.
    """

    image: np.ndarray
    gray: np.ndarray | None
    index: int
    timestamp: float
    name: str = ""


class FrameSource(abc.ABC):
    """A camera, stream or file that yields frames until it ends or fails.

    ``read`` returning ``None`` is a normal end (a file ran out); a live source that fails raises
    ``SourceError`` instead, so the daemon can tell "done" from "reconnect".
    """

    live: bool = False
    description: str = ""

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or file; raises SourceError if it cannot."""

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None at the end of a finite source."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice and before ``open``."""

    def __enter__(self) -> FrameSource:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"
