"""One colour per emotion, shared by the annotated video, the timeline chart and the live view, so
a colour means the same thing in every picture."""

from __future__ import annotations

# BGR, as OpenCV draws. FER2013's seven labels get fixed colours; any other label a manifest brings
# takes the next colour of FALLBACK by its position, so a custom model still gets a stable legend.
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (40, 40, 220),
    "disgust": (40, 140, 60),
    "fear": (160, 60, 150),
    "happy": (30, 200, 250),
    "sad": (200, 120, 40),
    "surprise": (30, 140, 250),
    "neutral": (170, 170, 170),
    "contempt": (90, 90, 140),
}
FALLBACK = [(180, 110, 0), (0, 160, 160), (120, 0, 200), (60, 200, 120), (200, 200, 0), (100, 100, 255)]


def colour(label: str, labels: list[str] | tuple[str, ...] = ()) -> tuple[int, int, int]:
    if label in COLOURS:
        return COLOURS[label]
    # str hashes change between processes; the byte sum does not
    index = list(labels).index(label) if label in labels else sum(label.encode())
    return FALLBACK[index % len(FALLBACK)]


def hex_colour(label: str, labels: list[str] | tuple[str, ...] = ()) -> str:
    """The same colour for HTML (RGB order)."""
    b, g, r = colour(label, labels)
    return f"#{r:02x}{g:02x}{b:02x}"
