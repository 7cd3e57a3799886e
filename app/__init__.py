"""The LTP inference service: FastAPI front, length-bucketed micro-batching, pruned forward."""
