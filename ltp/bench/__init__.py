"""Measuring speed and quality trade-offs: the offline dense-against-compact bench, the
runtime comparison (ONNX Runtime and torch), profiles, and the accuracy-against-FLOPs sweep."""
