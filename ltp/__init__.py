"""Learned Token Pruning for BERT-family classifiers, with a forward pass that really removes tokens."""

__version__ = "0.1.0"
