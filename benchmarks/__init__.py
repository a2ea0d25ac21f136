"""fer-bench: accuracy, model and pipeline latency of every artifact, and the `fer` package as a peer.

The latency parts use edge dependencies only (numpy, OpenCV, LiteRT/tflite-runtime,
onnxruntime) so the same command runs on a Raspberry Pi; Keras and ``train`` are imported
lazily, only for the accuracy part, and their absence is reported rather than fatal.
"""

__version__ = "0.1.0"
