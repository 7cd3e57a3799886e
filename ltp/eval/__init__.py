"""Measuring a model on a split: accuracy and per-class figures, relative FLOPs and kept
tokens, and accuracy per precision."""
