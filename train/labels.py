"""FER2013's fixed label order.

Training is the one place that knows FER2013's classes; every artifact downstream carries
them in its manifest, so edge/ and benchmarks/ never hard-code them.
"""

FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48
