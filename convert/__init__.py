"""Conversion of trained Keras models to TFLite (float and int8) and ONNX, verified, with a manifest."""

__version__ = "0.1.0"
