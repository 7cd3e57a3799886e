"""The backend: runs the pruned forward for one batch at a time, off the event loop."""

from __future__ import annotations

import time

import torch

from app.engine.batch import Batch, BatchStats, SequenceResult
from ltp.core.artifact import Artifact
from ltp.core.model import ForwardOutput
from ltp.core.text import Encoded


class Backend:
    """Holds the loaded artifacts of one device; ``run`` is called from the worker thread."""

    def __init__(self, artifacts: dict[str, Artifact]) -> None:
        self.artifacts = artifacts

    def forward(self, model: str, encoded: list[Encoded]) -> tuple[ForwardOutput, torch.Tensor]:
        """The compact forward of one padded batch; returns its output and fp32 logits."""
        with torch.inference_mode():
            out = self.artifacts[model].forward(encoded, mode="compact")
            return out, out.logits.float().cpu()

    def run(self, batch: Batch) -> BatchStats:
        start = time.perf_counter()
        out, logits = self.forward(batch.model, [e.encoded for e in batch.entries])
        probs = self.artifacts[batch.model].meta.head.scores(logits)  # softmax, sigmoid, values
        seconds = time.perf_counter() - start
        stats = BatchStats(model=batch.model, size=len(batch.entries), num_tokens=batch.num_tokens,
                           padded_tokens=batch.padded_tokens, seconds=seconds)
        for i, entry in enumerate(batch.entries):
            stats.results.append(SequenceResult(
                probabilities=probs[i].tolist(),
                logits=logits[i].tolist(),
                input_tokens=int(out.input_tokens[i]),
                kept_tokens_per_layer=out.kept_tokens[i].tolist(),
                flops=float(out.flops[i]),
                flops_dense=float(out.flops_dense[i]),
                queue_seconds=max(0.0, batch.formed_at - entry.enqueued_at),
                inference_seconds=seconds,
                batch_size=len(batch.entries),
            ))
        return stats
