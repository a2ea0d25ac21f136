"""Label sets and the few constants that training, conversion and the device must agree on.

FER2013's fixed order stays the default so the shipped model and its data keep their meaning.
A user's own data set names its classes itself (``auto``: the sorted class names found in the
data) or lists them in the order the model's outputs should have. Whatever is used is recorded
in the run's ``dataset.json`` and travels from there into the manifest, so edge/ and
benchmarks/ never hard-code class names.
"""

from __future__ import annotations

from typing import Sequence, Union

from train.errors import ConfigError

FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48
# Haar's box is ~0.96x FER2013's crop: 2% per side restores it. One value for the edge's crop
# (convert writes it into the manifest) and for training's optional face cropping.
DEFAULT_CROP_MARGIN = 0.02

FER2013 = "fer2013"  # FER2013's fixed order; class folders must be some of those names
AUTO = "auto"  # the sorted class names found in the data

# What a label spec resolves to: one of the two modes above, or an explicit ordered tuple.
LabelSpec = Union[str, tuple[str, ...]]


def parse_label_spec(spec: str | Sequence[str]) -> LabelSpec:
    """``"fer2013"``, ``"auto"``, ``"a,b,c"`` or a sequence of names, checked.

    An explicit list equal to FER2013's order means FER2013 mode, so passing the FER2013 labels
    tuple (as benchmarks/ and convert/ do with a manifest's labels) keeps the legacy loading.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() in (FER2013, AUTO):
            return text.lower()
        names = tuple(name.strip() for name in text.split(","))
    else:
        names = tuple(str(name).strip() for name in spec)
    if names == FER2013_LABELS:
        return FER2013
    if len(names) < 2:
        raise ConfigError(f"labels {','.join(names)!r}: need at least 2 classes (or 'fer2013' or 'auto')")
    bad = [name for name in names if not name or "/" in name or "\\" in name or name.startswith(".")]
    if bad:
        raise ConfigError(f"labels: {bad[0]!r} is not a usable class name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"labels: {', '.join(duplicates)} listed more than once")
    return names


def is_fer2013(spec: LabelSpec) -> bool:
    return spec == FER2013 or spec == FER2013_LABELS
