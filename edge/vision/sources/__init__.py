"""Where frames come from: cameras, streams, video files and image folders behind one interface.

The daemon only ever sees ``FrameSource``; ``open_source`` turns a user's ``--source`` string into
the right adapter so the choice is made in one place.
"""

from edge.vision.sources.base import Frame, FrameSource
from edge.vision.sources.factory import open_source, source_from_config

__all__ = ["Frame", "FrameSource", "open_source", "source_from_config"]
